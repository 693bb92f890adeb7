"""Recommendation quality on a processed dataset: every method side by side under one protocol,
baselines tuned on validation, with published results beside ours when the protocol has them.

    python scripts/bench_quality.py data=ml1m [two_tower_id=CKPT] [two_tower_image=CKPT] \
        [any recsys-evaluate override, e.g. eval.only=[popularity,ease]]

Protocol: the eval config (``recsys/conf/eval/*.yaml``) whose ``published`` block names the
dataset (``eval=recbole`` for ml1m), else ``eval=default``. History is the splits before the
evaluated one and the user's history items are excluded (as in training's validation and
``recsys-evaluate``). Each method with a search space (``hparams_search/<method>.yaml``) is
tuned in process with the sweep's budget and seeded TPE sampler, objective
``<eval.objective_metric>@<eval.main_k>`` on validation (history = train); the chosen setting is
evaluated on test fitted as the protocol says (``eval.fit_splits``: RecBole fits on train only
and excludes train + valid items) and, when that is less than the history, refit on
train + val too (column "refit ndcg"). Methods without one run as configured; methods that
need what the data lacks (timestamps) are skipped with the reason. Two-tower checkpoints are
evaluated untuned (their own sweep is ``recsys-train -m hparams_search=two_tower``). The
two-stage pipeline (``ranked``: candidate sources + LightGBM ranker, tuned by
``recsys-rank -m ranker/search=tpe``) is on; ``eval.methods.ranked.enabled=false`` leaves it out.
Prints the table with fit + ranking seconds and writes
``<output_dir>/eval/<data>/bench_quality/{metrics.json,report.md}``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import optuna
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from recsys.cli._app import CONFIG_DIR
from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import RecsysError
from recsys.evaluation.eval_data import EvalData, prepare_eval_data
from recsys.evaluation.evaluator import EvalResult, EvalSettings, evaluate
from recsys.evaluation.methods import BuildInfo, build_methods, skip_reason
from recsys.evaluation.report import write_report
from recsys.evaluation.stage import selected_methods, settings_from
from recsys.evaluation.tuning import SearchSpace, TuningResult, search_space, tune
from recsys.runtime import apply_runtime

TOWERS = ("two_tower_id", "two_tower_image")
HEADLINE = ("recall", "ndcg", "mrr", "hitrate")


def parse(argv: list[str]) -> tuple[str, dict[str, str], list[str]]:
    data, ckpts, rest = "synthetic", {}, []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "data":
            data = value
        elif key in TOWERS:
            ckpts[key] = value
        else:
            rest.append(arg)
    return data, ckpts, rest


def protocol_for(data: str) -> str:
    """The eval config whose ``published`` results name ``data``, else ``default``."""
    for path in sorted(Path(CONFIG_DIR, "eval").glob("*.yaml")):
        if data in (OmegaConf.load(path).get("published") or {}):
            return path.stem
    return "default"


def config(overrides: list[str], hydra_node: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides,
                       return_hydra_config=hydra_node)


def space_of(method: str, base: list[str]) -> SearchSpace | None:
    """The search space of ``hparams_search/<method>.yaml`` composed as a sweep would be."""
    if not Path(CONFIG_DIR, "hparams_search", f"{method}.yaml").is_file():
        return None
    cfg = config([*base, f"hparams_search={method}"], hydra_node=True)
    return search_space(cfg.hydra.sweeper, method, f"hparams_search/{method}.yaml")


def run(methods: dict[str, Any], data: EvalData, ev: dict[str, Any], settings: EvalSettings,
        info: BuildInfo) -> EvalResult:
    built = build_methods(methods, data, batch_size=int(ev["batch_size"]), seed=int(ev["seed"]),
                          threads=int(ev["threads"]), info=info)
    return evaluate(built, data, settings)


def tune_method(name: str, spec: dict[str, Any], space: SearchSpace, val: EvalData,
                ev: dict[str, Any], settings: EvalSettings) -> TuningResult:
    key = f"{ev['objective_metric']}@{settings.main_k}"

    def objective(values: dict[str, Any]) -> float:
        result = run({name: {**spec, **values}}, val, ev, settings, BuildInfo())
        return result.methods[name].overall[key]

    return tune(space, objective)


def table(result: EvalResult, info: BuildInfo, tuned: dict[str, TuningResult],
          published: dict[str, Any], refit: EvalResult | None = None) -> list[str]:
    k = result.settings.main_k
    cols = [f"{m}@{k}" for m in HEADLINE]
    head = (f"{'method':20s} " + " ".join(f"{c:>10s}" for c in cols) +
            f" {'published ndcg@' + str(k):>18s} {'diff':>7s} {'refit ndcg':>10s}"
            f" {'fit+rank s':>10s} {'tune s':>7s}  chosen (on validation)")
    lines = [head]
    for name, res in result.methods.items():
        ours = res.overall
        ref = (published.get(name) or {}).get(f"ndcg@{k}")
        ref_s = f"{ref:18.4f} {ours[f'ndcg@{k}'] - ref:+7.4f}" if ref is not None else \
            f"{'-':>18s} {'-':>7s}"
        again = refit.methods.get(name) if refit is not None else None
        refit_s = f"{again.overall[f'ndcg@{k}']:10.4f}" if again is not None else f"{'-':>10s}"
        seconds = info.fit_seconds.get(name, 0.0) + res.seconds
        tune_s = f"{tuned[name].seconds:7.1f}" if name in tuned else f"{'-':>7s}"
        chosen = _fmt_params(tuned[name].best) if name in tuned else ""
        lines.append(f"{name:20s} " + " ".join(f"{ours[c]:10.4f}" for c in cols) +
                     f" {ref_s} {refit_s} {seconds:10.2f} {tune_s}  {chosen}")
    for name, reason in info.skipped.items():
        lines.append(f"{name:20s} skipped: {reason}")
    return lines


def _fmt_params(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(values.items()))


def main(argv: list[str]) -> None:
    data_name, ckpts, rest = parse(argv)
    protocol = protocol_for(data_name)
    base = [f"data={data_name}", f"eval={protocol}", "eval.methods.ranked.enabled=true", *rest,
            *[f"eval.methods.{m}.path={p}" for m, p in ckpts.items()]]
    cfg = config(base)
    apply_runtime(cfg.runtime)  # the app's process settings, runtime.* overrides included
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not (Path(cfg.dataset_dir) / "manifest.json").is_file():
        print(f"skipped: no processed dataset at {cfg.dataset_dir} (run recsys-data "
              f"data={data_name})")
        return
    ev = as_dict(cfg.eval, "eval")
    settings = settings_from(ev)
    published = (ev.get("published") or {}).get(data_name) or {}
    dataset = load_dataset(cfg.dataset_dir)
    val = prepare_eval_data(dataset, "val")  # tuning: history = fit = train
    test = prepare_eval_data(dataset, "test", ev.get("history_splits"), ev.get("fit_splits"))
    refit = prepare_eval_data(dataset, "test", ev.get("history_splits")) \
        if test.fit_splits else None  # the protocol fits on less than the history: refit too
    specs = selected_methods(ev)
    print(f"data={data_name} ({len(test.users)} test users x {test.n_items} items), protocol "
          f"eval={protocol}: history = earlier splits, history items excluded, ties to the "
          f"lower item index; tuned on validation by {ev['objective_metric']}@{settings.main_k}")
    tuned: dict[str, TuningResult] = {}
    for name, spec in specs.items():
        space = space_of(name, base)
        if space is None or skip_reason(str(spec.get("kind")), spec, val, set()):
            continue
        tuned[name] = tune_method(name, spec, space, val, ev, settings)
        print(f"  tuned {name}: {_fmt_params(tuned[name].best)} -> validation "
              f"{tuned[name].value:.4f} ({space.n_trials} trials, {tuned[name].seconds:.1f}s)")
    final = {name: {**spec, **(tuned[name].best if name in tuned else {})}
             for name, spec in specs.items()}
    info = BuildInfo()
    start = time.perf_counter()
    result = run(final, test, ev, settings, info)
    print(f"\n== test split: methods fit on {'+'.join(test.fit_names)}, "
          f"{'+'.join(test.history_splits)} items excluded ({time.perf_counter() - start:.1f}s)")
    refit_result = run(final, refit, ev, settings, BuildInfo()) if refit is not None else None
    print("\n".join(table(result, info, tuned, published, refit_result)))
    out = Path(cfg.paths.output_dir) / "eval" / data_name / "bench_quality"
    extra = {
        "protocol": protocol,
        "published": published,
        "fit_seconds": info.fit_seconds,
        "skipped": info.skipped,
        "fit_splits": list(test.fit_names),
        "refit": {"fit_splits": list(refit.fit_names),
                  "methods": {n: r.overall for n, r in refit_result.methods.items()}}
        if refit is not None and refit_result is not None else None,
        "tuning": {name: {"chosen": t.best, "validation": t.value, "seconds": t.seconds,
                          "objective": f"{ev['objective_metric']}@{settings.main_k}",
                          "trials": t.trials} for name, t in tuned.items()},
    }
    write_report(result, out, title=f"bench_quality: {data_name}", extra=extra)
    print(f"metrics: {out / 'metrics.json'}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except RecsysError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
