"""``recsys-evaluate`` stage: load the dataset, build the methods, evaluate, write the report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.errors import ConfigError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.evaluator import EvalResult, EvalSettings, evaluate
from recsys.evaluation.methods import build_methods
from recsys.evaluation.report import write_report
from recsys.retrieval.index_spec import IndexSpec

log = logging.getLogger(__name__)


def settings_from(cfg: dict[str, Any]) -> EvalSettings:
    """:class:`EvalSettings` of an ``eval`` config node."""
    return EvalSettings(
        ks=tuple(int(k) for k in cfg["ks"]),
        main_k=int(cfg["main_k"]),
        exclude_purchased=bool(cfg["exclude_purchased"]),
        segments=tuple(cfg.get("segments") or ()),
        min_segment_users=int(cfg["min_segment_users"]),
        rare_item_max_users=int(cfg.get("rare_item_max_users") or 0),
    )


def selected_methods(ev: dict[str, Any]) -> dict[str, Any]:
    """``eval.methods`` restricted to ``eval.only`` (all when null), in config order."""
    specs: dict[str, Any] = ev["methods"]
    only = ev.get("only")
    if only is None:
        return specs
    unknown = [name for name in only if name not in specs]
    if unknown:
        raise ConfigError(f"eval.only: {unknown[0]!r} is not one of eval.methods "
                          f"({', '.join(specs)})", column="eval.only")
    return {name: spec for name, spec in specs.items() if name in only}


def objective_value(result: EvalResult, ev: dict[str, Any]) -> float:
    """``<eval.objective_metric>@<main_k>`` of method ``eval.objective`` (the first method run
    when null): the value ``recsys-evaluate`` returns to a sweep."""
    name = ev.get("objective") or next(iter(result.methods))
    if name not in result.methods:
        raise ConfigError(f"eval.objective: method {name!r} was not evaluated (evaluated: "
                          f"{', '.join(result.methods)})", column="eval.objective")
    key = f"{ev['objective_metric']}@{result.settings.main_k}"
    overall = result.methods[name].overall
    if key not in overall:
        raise ConfigError(f"eval.objective_metric: {key} is not a metric ({', '.join(overall)})",
                          column="eval.objective_metric")
    return float(overall[key])


def run_evaluation(cfg: DictConfig) -> tuple[Path, EvalResult]:
    """Evaluate every configured method on ``cfg.eval.split``; returns the report directory."""
    ev = as_dict(cfg.eval, "eval")
    dataset = load_dataset(cfg.dataset_dir)
    data = prepare_eval_data(dataset, ev["split"], ev.get("history_splits"), ev.get("fit_splits"))
    index = IndexSpec.from_config(as_dict(cfg.index, "index")) if ev["through_index"] else None
    methods = build_methods(selected_methods(ev), data, index=index,
                            batch_size=int(ev["batch_size"]), seed=int(ev["seed"]),
                            threads=int(ev["threads"]))
    result = evaluate(methods, data, settings_from(ev),
                      data_name=str(dataset.manifest.get("name", dataset.path)))
    out = write_report(result, Path(cfg.output_dir))
    return out, result
