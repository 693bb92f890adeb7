"""``recsys-rank data=<name>``: the two-stage pipeline (candidate sources + LightGBM ranker)
trained on the validation labels and evaluated on test beside each single source and the
baselines (same protocol, one run), with candidate recall and feature importance, and writes
the ranked serving bundle (``bundle=false`` skips it);
``recsys-rank -m ranker/search=tpe`` tunes the ranker on a split of the validation
users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.data.atomic import atomic_directory
from recsys.errors import ConfigError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.evaluator import evaluate
from recsys.evaluation.methods import build_methods
from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.ranked import (
    calibration,
    candidate_lists,
    fit_ranked,
    source_methods,
    tune_split_top,
)
from recsys.evaluation.report import write_report
from recsys.evaluation.stage import selected_methods, settings_from
from recsys.serving.ranked import export_ranked


def spec_of(cfg: DictConfig) -> dict[str, Any]:
    return {"candidates": as_dict(cfg.candidates, "candidates"),
            "ranker": as_dict(cfg.ranker, "ranker"),
            "exclude_purchased": bool(cfg.eval.exclude_purchased),
            "two_tower_checkpoint": cfg.two_tower_checkpoint, "two_tower_bundle": cfg.two_tower_bundle}


def tune(cfg: DictConfig) -> float:
    """Validation only: train on ``tune_fraction`` of the validation users, score the rest;
    with ``tune_seeds``, once per user split, the objective averaged over them."""
    ev = as_dict(cfg.eval, "eval")
    val = prepare_eval_data(load_dataset(cfg.dataset_dir), "val")
    seeds = [int(s) for s in cfg.tune_seeds] if cfg.tune_seeds else [int(cfg.seed)]
    k = int(ev["main_k"])
    runs = []
    for seed in seeds:
        held, top = tune_split_top(spec_of(cfg), val, float(cfg.tune_fraction), seed, k)
        runs.append(ranking_metrics(top, val.truth[held], [k]))
        print(f"seed={seed} " * (len(seeds) > 1) + " ".join(f"{n}={v:.4f}"
                                                           for n, v in runs[-1].items()))
    mean = {n: sum(float(r[n]) for r in runs) / len(runs) for n in runs[0]}
    if len(seeds) > 1:
        print(f"mean of {len(seeds)} splits " + " ".join(f"{n}={v:.4f}" for n, v in mean.items()))
    return mean[f"{ev['objective_metric']}@{k}"]


def task(cfg: DictConfig) -> float:
    """Evaluate on test (``mode=evaluate``) or tune on validation (``mode=tune``); returns ndcg@main_k of the ranked
    pipeline (a sweep maximises it)."""
    if cfg.mode == "tune":
        return tune(cfg)
    if cfg.mode != "evaluate":
        raise ConfigError(f"mode must be evaluate or tune, got {cfg.mode!r}", column="mode")
    ev = as_dict(cfg.eval, "eval")
    settings = settings_from(ev)
    data = prepare_eval_data(load_dataset(cfg.dataset_dir), "test", ev.get("history_splits"),
                             ev.get("fit_splits"))
    spec = spec_of(cfg)
    pipeline, ranker = fit_ranked(spec, data)
    period, lists = candidate_lists(pipeline, data, spec["exclude_purchased"])
    recall = pipeline.recall(period, lists)
    calib = calibration(pipeline, ranker, period, settings.main_k)
    methods = {**source_methods(pipeline, ranker, data, period.history),
               **build_methods(selected_methods(ev), data, batch_size=int(ev["batch_size"]),
                               seed=int(ev["seed"]), threads=int(ev["threads"]))}
    result = evaluate(methods, data, settings, data_name=str(cfg.data.name))
    out = Path(cfg.output_dir)
    write_report(result, out, title=f"two-stage ranking: {cfg.data.name}",
                 extra={"candidate_recall": recall, "feature_importance": ranker.importance(),
                        "calibration": calib})
    with atomic_directory(out / "ranker") as tmp:
        ranker.save(tmp)
    if cfg.bundle:
        dataset = load_dataset(cfg.dataset_dir)
        export_ranked(out / "bundle", spec, pipeline, ranker, period.history,
                      dataset.users.sort_values("user_idx")["user_id"].astype(str).to_numpy(),
                      dataset.items.sort_values("item_idx")["item_id"].astype(str).to_numpy())
    print_table(result.to_dict()["methods"], recall, settings.main_k)
    print_calibration(calib)
    return float(result.methods["ranked"].overall[f"ndcg@{settings.main_k}"])


def print_table(methods: dict[str, dict[str, float]], recall: dict[str, dict[str, float]],
                k: int) -> None:
    cols = [f"recall@{k}", f"ndcg@{k}", f"map@{k}"]
    print(f"{'method':24s} " + " ".join(f"{c:>10s}" for c in cols))
    for name, m in methods.items():
        print(f"{name:24s} " + " ".join(f"{m[c]:10.4f}" for c in cols))
    ats = list(next(iter(recall.values())))
    print(f"\n{'candidate recall':24s} " + " ".join(f"{a:>10s}" for a in ats))
    for name, r in recall.items():
        print(f"{name:24s} " + " ".join(f"{r[a]:10.4f}" for a in ats))


def print_calibration(calib: dict[str, dict[str, Any]]) -> None:
    """Brier score (vs the constant base rate), ECE and the reliability table per pair set."""
    for name, c in calib.items():
        if not c.get("pairs"):
            continue
        print(f"\npurchase probability on the test {name} ({c['pairs']:,} pairs, positive rate "
              f"{c['positive_rate']:.4f}): Brier {c['brier']:.5f} (base rate {c['brier_base_rate']:.5f})"
              f", ECE {c['ece']:.4f}")
        print("  " + "  ".join(f"{b['mean_predicted']:.3f}->{b['observed']:.3f}" for b in c["table"]))


def main() -> None:
    run_app("rank", task)


if __name__ == "__main__":
    main()
