"""``recsys-simulate plan_path=...``: simulated responses of the synthetic world to a campaign plan."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.cli.campaign import rules_of
from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.marketing.outcome_io import read_plan, write_log
from recsys.marketing.settings import simulate_config
from recsys.marketing.simulate import simulate_plan
from recsys.marketing.world import LatentWorld, load_world


def world_of(cfg: DictConfig) -> LatentWorld:
    """The latent world of ``data.generator`` checked against ``world_dir``."""
    generator = cfg.data.get("generator")
    if generator is None:
        raise ConfigError(f"data={cfg.data.name} has no generator: the simulator needs the "
                          "synthetic world (data=synthetic)")
    privacy = cfg.get("preprocess", {}).get("privacy")
    return load_world(Path(cfg.world_dir), generator,
                      None if privacy is None else as_dict(privacy, "preprocess.privacy"))


def task(cfg: DictConfig) -> None:
    """Simulate the plan and write the outcome log."""
    sim = simulate_config(cfg.simulate)
    world = world_of(cfg)
    plan_path = Path(cfg.plan_path)
    cost = {name: opt.cost for name, opt in rules_of(cfg).channels.items()}
    log = simulate_plan(read_plan(plan_path), world, sim, cost, str(plan_path))
    out = Path(cfg.output_path)
    write_log(log, out)
    treat = log[log["group"] == "treatment"]
    print(f"simulate: {len(treat)} contacted, {len(log) - len(treat)} held out; open rate "
          f"{treat['opened'].mean():.3f}, conversion {treat['converted'].mean():.3f} (control "
          f"{log.loc[log['group'] == 'control', 'converted'].mean():.3f}) -> {out}")


def main() -> None:
    run_app("simulate", task)


if __name__ == "__main__":
    main()
