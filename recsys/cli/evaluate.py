"""``recsys-evaluate eval.split=test``: baselines and trained models ranked over the catalogue."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.evaluation.stage import run_evaluation


def task(cfg: DictConfig) -> None:
    """Run the evaluation and print the headline metric of every method."""
    out, result = run_evaluation(cfg)
    k = result.settings.main_k
    for name, res in result.methods.items():
        print(f"{name:32s} recall@{k}={res.overall.get(f'recall@{k}', 0.0):.4f} "
              f"ndcg@{k}={res.overall.get(f'ndcg@{k}', 0.0):.4f}")
    print(f"report: {out / 'report.md'}")


def main() -> None:
    run_app("evaluate", task)


if __name__ == "__main__":
    main()
