"""recsys-train: fit a two-tower model (``recsys/conf/train.yaml``); with ``-m
hparams_search=<name>`` an Optuna sweep over the returned validation objective."""

from __future__ import annotations

import math

from omegaconf import DictConfig

from recsys.cli._app import run_app


def task(cfg: DictConfig) -> float:
    """Train; return the validation objective (``cfg.objective``) for sweeps, NaN without
    validation."""
    from recsys.training.train import train

    metrics, _ = train(cfg)
    objective = metrics.get("objective", math.nan)  # NaN: no validation, a failed trial
    print(f"run: {cfg.run_dir} ({cfg.objective}={objective:.4f})")
    return objective


def check_machine(cfg: DictConfig) -> None:
    """A GPU trainer this machine cannot run (no CUDA, too few GPUs) stops before anything runs."""
    from recsys.devices import check_trainer_devices

    check_trainer_devices(cfg.trainer.accelerator, cfg.trainer.devices)


def main() -> None:
    run_app("train", task, check_machine)


if __name__ == "__main__":
    main()
