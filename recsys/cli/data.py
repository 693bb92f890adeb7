"""`recsys-data`: build a processed dataset from the configured source."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.data.pipeline import build_dataset
from recsys.data.summary import print_summary


def task(cfg: DictConfig) -> None:
    print_summary(build_dataset(cfg))


def main() -> None:
    run_app("data", task)


if __name__ == "__main__":
    main()
