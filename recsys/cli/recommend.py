"""``recsys-recommend user=<id> k=12``: top-K of one user as a table with item attributes."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.serving.stage import run_recommend
from recsys.serving.table import print_recommendations


def task(cfg: DictConfig) -> None:
    """Recommend and print."""
    _, frame = run_recommend(cfg)
    who = f"user {cfg.user}" if cfg.user is not None else "new user"
    print_recommendations(frame, f"Top {cfg.k} for {who}")


def main() -> None:
    run_app("recommend", task)


if __name__ == "__main__":
    main()
