"""``recsys-evaluate eval.split=test``: baselines and trained models ranked over the catalogue;
``recsys-evaluate -m hparams_search=<baseline> data=<name>`` tunes a baseline on validation."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.evaluation.stage import objective_value, run_evaluation


def task(cfg: DictConfig) -> float:
    """Run the evaluation, print the headline metric of every method and return the objective
    (``eval.objective``; a sweep maximises it, on the validation split only)."""
    if cfg.eval.split != "val" and _sweeping(cfg):
        raise ConfigError(f"a sweep tunes on validation: eval.split={cfg.eval.split} must be val",
                          column="eval.split")
    out, result = run_evaluation(cfg)
    k = result.settings.main_k
    for name, res in result.methods.items():
        print(f"{name:32s} recall@{k}={res.overall.get(f'recall@{k}', 0.0):.4f} "
              f"ndcg@{k}={res.overall.get(f'ndcg@{k}', 0.0):.4f}")
    print(f"report: {out / 'report.md'}")
    return objective_value(result, as_dict(cfg.eval, "eval"))


def _sweeping(cfg: DictConfig) -> bool:
    """Whether this job is a trial of a multirun sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def main() -> None:
    run_app("evaluate", task)


if __name__ == "__main__":
    main()
