"""``recsys-campaign bundle_dir=...`` (or ``candidates_path=...``): a per-user campaign plan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from recsys.cli._app import run_app
from recsys.errors import ConfigError
from recsys.rules.campaign import CampaignSettings, run_campaign
from recsys.rules.config import RulesConfig, load_rules, rules_from_cfg


def rules_of(cfg: DictConfig) -> RulesConfig:
    """The rules YAML at ``rules_path`` if set, else the composed ``rules`` group."""
    if cfg.get("rules_path"):
        return load_rules(cfg.rules_path)
    choice = HydraConfig.get().runtime.choices.get("rules") if HydraConfig.initialized() else None
    return rules_from_cfg(cfg.rules, f"conf/rules/{choice or 'default'}.yaml")


def candidates_of(cfg: DictConfig) -> Path:
    """``candidates_path`` if set, else candidates retrieved from the bundle at ``bundle_dir``."""
    if cfg.get("candidates_path"):
        return Path(cfg.candidates_path)
    if not cfg.get("bundle_dir"):
        raise ConfigError("campaign: set candidates_path=<parquet> or bundle_dir=<serving bundle>")
    from recsys.serving.candidates import write_candidates

    c = cfg.candidates
    target = Path(cfg.output_dir).parent / f"{cfg.campaign_id}_candidates.parquet"
    return write_candidates(Path(cfg.bundle_dir), Path(cfg.dataset_dir), int(c.k), bool(c.exclude_purchased), target)


def settings(cfg: DictConfig) -> CampaignSettings:
    c, e = cfg.context, cfg.evaluation
    aliases = OmegaConf.to_container(cfg.mining.columns, resolve=True)
    assert isinstance(aliases, dict)
    return CampaignSettings(
        campaign_id=str(cfg.campaign_id),
        candidates_path=candidates_of(cfg),
        dataset_dir=Path(cfg.dataset_dir),
        mining_dir=Path(cfg.mining_dir),
        output_dir=Path(cfg.output_dir),
        history_splits=list(c.history_splits),
        purchase_events=list(c.purchase_events),
        aliases={str(k): [str(x) for x in v] for k, v in aliases.items()},
        demand_window_days=float(c.demand_window_days),
        now=pd.Timestamp(c.now) if c.now else None,
        contacts_path=Path(c.contacts_path) if c.contacts_path else None,
        holdout_split=e.holdout_split,
        ks=[int(k) for k in e.ks],
    )


def task(cfg: DictConfig) -> None:
    """Run one campaign and print where the plan went."""
    out = run_campaign(settings(cfg), rules_of(cfg))
    print(f"campaign: {out.n_rows} recommendations for {out.n_users} users -> {out.output_dir}")


def main() -> None:
    run_app("campaign", task)


if __name__ == "__main__":
    main()
