"""recsys-train: fit a two-tower model (``recsys/conf/train.yaml``); with ``-m
hparams_search=<name>`` an Optuna sweep over the returned validation objective."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app


def task(cfg: DictConfig) -> float:
    """Train; return the validation objective (``cfg.objective``) for sweeps."""
    from recsys.training.train import train

    metrics, _ = train(cfg)
    print(f"run: {cfg.run_dir} ({cfg.objective}={metrics['objective']:.4f})")
    return metrics["objective"]


def main() -> None:
    run_app("train", task)


if __name__ == "__main__":
    main()
