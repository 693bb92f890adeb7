"""``recsys-loop``: campaign -> simulate -> adjust -> campaign for N rounds; a KPI table and plot."""

from __future__ import annotations

from pathlib import Path

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from recsys.cli import adjust as adjust_cli
from recsys.cli import campaign as campaign_cli
from recsys.cli import simulate as simulate_cli
from recsys.cli._app import run_app
from recsys.config import as_dict
from recsys.marketing.challengers import challenge_config
from recsys.marketing.loop import LoopConfig, run_loop
from recsys.marketing.settings import simulate_config


def stage(name: str, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """A stage's own config composed with the loop's data choice, its ``data.*`` / ``paths.*``
    command-line overrides and output root, then the stage's own overrides."""
    hc = HydraConfig.get()
    shared = [o for o in hc.overrides.task if o.split("=", 1)[0].lstrip("+~").startswith(
        ("data.", "paths."))]
    return compose(name, [f"data={hc.runtime.choices.get('data', 'synthetic')}", *shared,
                          f"paths.output_dir={cfg.paths.output_dir}", *[str(o) for o in overrides]])


def task(cfg: DictConfig) -> None:
    """Run the loop and print the per-round revenue - promotion cost and the violations."""
    ccfg = stage("campaign", cfg, cfg.campaign_overrides)
    scfg = stage("simulate", cfg, cfg.simulate_overrides)
    acfg = stage("adjust", cfg, [*cfg.adjust_overrides, "outcomes_path=unused"])
    table = run_loop(
        campaign_cli.inputs(ccfg), campaign_cli.rules_of(ccfg), campaign_cli.backtest_config(ccfg),
        simulate_cli.world_of(scfg), simulate_config(scfg.simulate), adjust_cli.settings(acfg),
        LoopConfig(int(cfg.rounds), float(cfg.round_days), int(cfg.n_boot), float(cfg.ci_level),
                   challenge_config(as_dict(cfg.challengers, "challengers")
                                    if cfg.get("challengers") else None)),
        Path(cfg.output_dir))
    for row in table.itertuples(index=False):
        print(f"round {row.round}: contacted {row.contacted}, conversion {row.conversion_rate:.4f}"
              f" (control {row.control_conversion_rate:.4f}), revenue - cost per contacted "
              f"{row.profit_per_contacted:.4f} [{row.profit_ci_low:.4f}, {row.profit_ci_high:.4f}]"
              f" (expected {row.expected_profit_per_contacted:.4f} [{row.expected_ci_low:.4f}, "
              f"{row.expected_ci_high:.4f}]); challengers {row.challengers}, adopted "
              f"{row.adopted}")
    broken = int(table.filter(like="violations_").to_numpy().sum())
    ratio = table["profit_per_contacted"].iloc[-1] / table["profit_per_contacted"].iloc[0]
    e = table["expected_profit_per_contacted"]
    print(f"loop: revenue - promotion cost per contacted, last / first round {ratio:.3f} "
          f"(expected {e.iloc[-1] / e.iloc[0]:.3f}); constraint violations {broken} -> "
          f"{cfg.output_dir}")


def main() -> None:
    run_app("loop", task)


if __name__ == "__main__":
    main()
