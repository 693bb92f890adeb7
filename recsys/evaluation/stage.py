"""``recsys-evaluate`` stage: load the dataset, build the methods, evaluate, write the report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.data import load_dataset
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
    )


def run_evaluation(cfg: DictConfig) -> tuple[Path, EvalResult]:
    """Evaluate every configured method on ``cfg.eval.split``; returns the report directory."""
    ev = as_dict(cfg.eval, "eval")
    dataset = load_dataset(cfg.dataset_dir)
    data = prepare_eval_data(dataset, ev["split"], ev.get("history_splits"))
    index = IndexSpec.from_config(as_dict(cfg.index, "index")) if ev["through_index"] else None
    methods = build_methods(ev["methods"], data, index=index, batch_size=int(ev["batch_size"]),
                            seed=int(ev["seed"]), threads=int(ev["threads"]))
    result = evaluate(methods, data, settings_from(ev),
                      data_name=str(dataset.manifest.get("name", dataset.path)))
    out = write_report(result, Path(cfg.output_dir))
    return out, result
