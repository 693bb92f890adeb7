"""``recsys-mine dataset_dir=... output_dir=...``: consumer mining outputs for a processed dataset."""

from __future__ import annotations

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.mining import MiningConfig, run_mining


def task(cfg: DictConfig) -> None:
    """Run the mining stage and print where its outputs went."""
    summary = run_mining(cfg.dataset_dir, cfg.output_dir, MiningConfig.from_cfg(cfg.mining))
    print(
        f"mining: {summary.n_users} users ({summary.n_buyers} buyers), k={summary.best_k}, "
        f"rules {summary.n_rules}, AUC {summary.auc} -> {summary.output_dir}"
    )


def main() -> None:
    run_app("mine", task)


if __name__ == "__main__":
    main()
