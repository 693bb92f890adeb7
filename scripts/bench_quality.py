"""Recommendation quality on a processed dataset: every method side by side, with the goals.

Runs the offline evaluation (``conf/evaluate.yaml``) on the test split twice: with the training
split as history and with train + validation as history; every method, the two-tower user
vectors included, reads the same history in each run. It prints Recall@12 / NDCG@12 per method, the ratio to the best
baseline, cold-item recall, and the goal checks (image two-tower >= 1.2x the best baseline;
image towers beat ID-only on cold test items).

    python scripts/bench_quality.py data=hm [two_tower_id=CKPT] [two_tower_image=CKPT] \
        [any recsys-evaluate override, e.g. eval.exclude_purchased=true]

Checkpoints default to ``<runs_dir>/<data>/{id_only,hm_images|images}/checkpoints/best.ckpt`` when they
exist; without them only the baselines run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.cli._app import CONFIG_DIR
from recsys.evaluation.evaluator import EvalResult
from recsys.evaluation.stage import run_evaluation
from recsys.runtime import apply_runtime

BASELINES = ("popularity", "recent_popularity", "repurchase", "als", "bpr")
# Runs searched, in order, under <runs_dir>/<data>/ when no checkpoint is given.
TOWERS = {"two_tower_id": ("id_only",), "two_tower_image": ("hm_images", "images")}
COMBOS = {
    "als_repurchase": "{kind: history_first, base: als, half_life_days: 30}",
    "two_tower_id_repurchase": "{kind: history_first, base: two_tower_id, half_life_days: 30}",
}
K = 12


def parse(argv: list[str]) -> tuple[str, dict[str, str], list[str]]:
    data, ckpts, rest = "hm", {}, []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "data":
            data = value
        elif key in TOWERS:
            ckpts[key] = value
        else:
            rest.append(arg)
    return data, ckpts, rest


def config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def checkpoints(cfg: DictConfig, data: str, given: dict[str, str]) -> dict[str, str]:
    found = {}
    for method, runs in TOWERS.items():
        paths = [given[method]] if method in given else [
            str(Path(cfg.paths.runs_dir) / data / run / "checkpoints" / "best.ckpt") for run in runs
        ]
        path = next((p for p in paths if Path(p).is_file()), None)
        if path is not None:
            found[method] = path
    return found


def table(result: EvalResult) -> list[str]:
    methods = result.to_dict()["methods"]
    slices = result.to_dict()["slices"]
    best = max((methods[m][f"recall@{K}"] for m in BASELINES if m in methods), default=0.0)
    cold = slices.get("cold_items", {}).get("methods", {})
    lines = [f"{'method':28s} {'recall@12':>10s} {'ndcg@12':>9s} {'map@12':>8s} "
             f"{'x best baseline':>15s} {'cold-item recall@12':>20s} {'seconds':>8s}"]
    for name, values in methods.items():
        ratio = values[f"recall@{K}"] / best if best else float("nan")
        cold_recall = cold.get(name, {}).get(f"recall@{K}", float("nan"))
        lines.append(f"{name:28s} {values[f'recall@{K}']:10.4f} {values[f'ndcg@{K}']:9.4f} "
                     f"{values[f'map@{K}']:8.4f} {ratio:15.2f} {cold_recall:20.4f} "
                     f"{result.methods[name].seconds:8.2f}")
    return lines


def goals(result: EvalResult) -> list[str]:
    doc = result.to_dict()
    methods, cold = doc["methods"], doc["slices"].get("cold_items", {}).get("methods", {})
    best_name = max((m for m in BASELINES if m in methods), key=lambda m: methods[m][f"recall@{K}"])
    best = methods[best_name][f"recall@{K}"]
    out = [f"best baseline: {best_name} recall@{K}={best:.4f}"]
    for name in ("two_tower_image", "two_tower_image_repurchase"):
        if name in methods:
            ratio = methods[name][f"recall@{K}"] / best
            out.append(f"goal {name} >= 1.2x best baseline: {ratio:.2f}x -> "
                       f"{'met' if ratio >= 1.2 else 'NOT met'}")
    if "two_tower_image" in cold and "two_tower_id" in cold:
        img, ids = (cold[m][f"recall@{K}"] for m in ("two_tower_image", "two_tower_id"))
        out.append(f"goal image beats ID-only on cold items: {img:.4f} vs {ids:.4f} -> "
                   f"{'met' if img > ids else 'NOT met'}")
    return out


def main(argv: list[str]) -> None:
    data, given, rest = parse(argv)
    base = [f"data_name={data}", *rest]
    cfg = config(base)
    apply_runtime(cfg.runtime)  # the app's process settings, runtime.* overrides included
    if not (Path(cfg.dataset_dir) / "manifest.json").is_file():
        print(f"skipped: no processed dataset at {cfg.dataset_dir} "
              f"(run recsys-data data={data} split=leave_last_day)")
        return
    found = checkpoints(cfg, data, given)
    overrides = [*base, *[f"eval.methods.{m}.path={p}" for m, p in found.items()]]
    overrides += [f"+eval.methods.{name}={spec}" for name, spec in COMBOS.items()]
    print(f"data={data}; two-tower checkpoints: {found or 'none (baselines only)'}")
    for label, history in (("train", "[train]"), ("train+val", "[train,val]")):
        cfg = config([*overrides, f"eval.history_splits={history}",
                      f"output_dir=${{paths.output_dir}}/eval/{data}/bench_quality/{label}"])
        out, result = run_evaluation(cfg)
        print(f"\n== test split, history = {label}: {result.n_users} users x "
              f"{result.n_items} items (report: {out / 'report.md'})")
        print("\n".join(table(result)))
        print("\n".join(goals(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
