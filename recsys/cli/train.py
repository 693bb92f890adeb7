"""recsys-train: fit a two-tower model (``conf/train.yaml``)."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app


def task(cfg: DictConfig) -> None:
    from recsys.training.train import train

    train(cfg)


def main() -> None:
    run_app("train", task)


if __name__ == "__main__":
    main()
