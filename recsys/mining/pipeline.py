"""``recsys-mine``: every mining output for a processed dataset, written atomically."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from recsys.data.atomic import atomic_directory
from recsys.errors import DataError
from recsys.mining.association import mine_association_rules
from recsys.mining.classifiers import train_classifiers
from recsys.mining.config import MiningConfig
from recsys.mining.inputs import load_inputs, resolve_columns
from recsys.mining.plots import PLOTS, write_plots
from recsys.mining.profile_json import to_jsonl
from recsys.mining.profiles import build_profiles
from recsys.mining.report import render_report
from recsys.mining.rfm import compute_rfm
from recsys.mining.segmentation import segment_users

log = logging.getLogger(__name__)

MINING_FILES = (
    "rfm.parquet", "segments.parquet", "profiles.parquet", "profiles.jsonl",
    "association_rules.parquet", "predictions.parquet", "classifiers.json", "mining.json",
    "report.md", *PLOTS,
)


@dataclass(frozen=True)
class MiningSummary:
    """Where the outputs went and the headline numbers."""

    output_dir: Path
    n_users: int
    n_buyers: int
    best_k: int
    n_rules: dict[str, int]
    auc: dict[str, dict[str, float | None]]


def run_mining(dataset_dir: Path | str, output_dir: Path | str, cfg: MiningConfig) -> MiningSummary:
    """Mine the history splits of ``dataset_dir`` and write the mining directory ``output_dir``."""
    with threadpool_limits(limits=cfg.n_threads):
        return _run(dataset_dir, output_dir, cfg)


def _run(dataset_dir: Path | str, output_dir: Path | str, cfg: MiningConfig) -> MiningSummary:
    inputs = load_inputs(dataset_dir, cfg.history_splits, cfg.purchase_events)
    if inputs.purchases.empty:
        raise DataError(f"no {cfg.purchase_events} events in {cfg.history_splits}",
                        file=str(inputs.source), column="event")
    columns = resolve_columns(inputs.items, cfg.columns)
    rfm = compute_rfm(inputs.purchases, inputs.users, inputs.now, cfg.rfm_bins)
    s = cfg.segmentation
    seg = segment_users(rfm, inputs.users, k_min=s.k_min, k_max=s.k_max,
                        profile_features=s.profile_features, min_users=s.min_users, seed=cfg.seed)
    profiles = build_profiles(inputs.interactions, inputs.purchases, inputs.users, inputs.items,
                              rfm, columns, cfg.profiles, inputs.now)
    rules = mine_association_rules(inputs.purchases, inputs.items, columns.get("category"),
                                   cfg.basket_key, cfg.association)
    clf = train_classifiers(inputs, cfg.classifiers, cfg.seed)
    segments = seg.table.merge(rfm.drop(columns=["user_id"]), on="user_idx", how="left")
    predictions = inputs.users[["user_idx", "user_id"]].merge(clf.scores, on="user_idx")
    meta: dict[str, Any] = {
        "dataset": str(Path(dataset_dir).resolve()),
        "history_splits": cfg.history_splits,
        "now": inputs.now.isoformat(),
        "n_purchases": len(inputs.purchases),
        "columns": columns,
        "demographics": [c for c in cfg.profiles.demographics if c in inputs.users.columns],
        "best_k": seg.best_k,
        "silhouettes": {str(k): v for k, v in seg.silhouettes.items()},
    }
    n_baskets = rules.attrs.get("n_baskets", {})
    meta["association_thresholds"] = {
        level: {"min_support": t.support(int(n_baskets[level])), "min_count": t.min_count,
                "min_confidence": t.min_confidence, "min_lift": t.min_lift,
                "baskets": int(n_baskets[level])}
        for level, t in (("item", cfg.association.item), ("category", cfg.association.category))
        if level in n_baskets}
    report = render_report(meta, rfm, seg, profiles, rules, clf.summary)
    with atomic_directory(Path(output_dir)) as tmp:
        rfm.to_parquet(tmp / "rfm.parquet", index=False)
        segments.to_parquet(tmp / "segments.parquet", index=False)
        profiles.to_parquet(tmp / "profiles.parquet", index=False)
        (tmp / "profiles.jsonl").write_text(to_jsonl(profiles, meta["demographics"]))
        rules.to_parquet(tmp / "association_rules.parquet", index=False)
        predictions.to_parquet(tmp / "predictions.parquet", index=False)
        (tmp / "classifiers.json").write_text(json.dumps(clf.summary, indent=2))
        (tmp / "mining.json").write_text(json.dumps(meta, indent=2))
        (tmp / "report.md").write_text(report)
        write_plots(rfm, segments, rules, tmp)
    auc = {
        task: {m: v["auc"] for m, v in clf.summary[task].get("models", {}).items()}
        for task in ("churn", "intent")
    }
    n_rules = rules["level"].value_counts().to_dict()
    log.info("mining written to %s", output_dir)
    return MiningSummary(Path(output_dir), len(rfm), int((rfm["frequency"] > 0).sum()),
                         seg.best_k, {str(k): int(v) for k, v in n_rules.items()}, auc)
