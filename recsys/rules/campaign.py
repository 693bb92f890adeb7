"""``recsys-campaign``: candidates + dataset + mining + rules -> plan.parquet, plan.csv, summary.md
(plus rule_counts.json, removed.parquet with the filter that removed each dropped candidate, and
kpis.json when a holdout split is configured)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.atomic import atomic_directory
from recsys.errors import DataError
from recsys.rules.config import RulesConfig
from recsys.rules.context import build_context
from recsys.rules.engine import apply_rules
from recsys.rules.kpis import business_kpis
from recsys.rules.metrics import before_after
from recsys.rules.plan_io import read_candidates, write_plan_csv, write_plan_parquet
from recsys.rules.summary import render_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignSettings:
    """Inputs and options of one campaign run (from conf/campaign.yaml)."""

    campaign_id: str
    candidates_path: Path
    dataset_dir: Path
    mining_dir: Path
    output_dir: Path
    history_splits: Sequence[str]
    purchase_events: Sequence[str]
    aliases: dict[str, list[str]]
    demand_window_days: float
    now: pd.Timestamp | None
    contacts_path: Path | None
    holdout_split: str | None
    ks: Sequence[int]


@dataclass(frozen=True)
class CampaignOutcome:
    output_dir: Path
    n_users: int
    n_rows: int
    kpis: dict[str, Any] | None


def _contacts(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    frame = read_candidates(path)
    for col in ("user_idx", "sent_at"):
        if col not in frame.columns:
            raise DataError("contact history lacks a column", file=str(path), column=col)
    return frame.assign(sent_at=pd.to_datetime(frame["sent_at"]))


def run_campaign(s: CampaignSettings, rules: RulesConfig) -> CampaignOutcome:
    """Apply ``rules`` to the candidates and write the plan and its summary atomically."""
    candidates = read_candidates(s.candidates_path)
    loaded = build_context(
        s.dataset_dir, s.mining_dir, history_splits=s.history_splits,
        purchase_events=s.purchase_events, aliases=s.aliases,
        demand_window_days=s.demand_window_days, now=s.now, contacts=_contacts(s.contacts_path),
    )
    ctx = loaded.context
    result = apply_rules(candidates, ctx, rules, source=str(s.candidates_path))
    plan = result.recommendations
    plan.insert(0, "campaign_id", s.campaign_id)
    kpis, metrics = None, None
    if s.holdout_split is not None:
        holdout = loaded.dataset.split(s.holdout_split)
        segments = loaded.mining.segments
        kpis = business_kpis(plan, holdout, ctx.items, segments, s.purchase_events)
        metrics = before_after(candidates, plan, holdout, s.ks, s.purchase_events)
        kpis["retrieval"] = metrics.set_index("stage").to_dict(orient="index")
    summary = render_summary(s.campaign_id, plan, result.rule_counts, len(candidates), kpis, metrics)
    with atomic_directory(s.output_dir) as tmp:
        write_plan_parquet(plan, tmp / "plan.parquet")
        write_plan_csv(plan, tmp / "plan.csv")
        (tmp / "summary.md").write_text(summary)
        (tmp / "rule_counts.json").write_text(json.dumps(result.rule_counts, indent=2))
        result.removed.to_parquet(tmp / "removed.parquet", index=False)
        if kpis is not None:
            (tmp / "kpis.json").write_text(json.dumps(kpis, indent=2, default=str))
    log.info("campaign plan written to %s", s.output_dir)
    return CampaignOutcome(s.output_dir, int(plan["user_idx"].nunique()), len(plan), kpis)
