"""``recsys-campaign``: a per-user campaign plan as of a cut-off, backtested on the purchases after it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from recsys.cli._app import run_app
from recsys.errors import ConfigError
from recsys.marketing.campaign import BacktestConfig, CampaignInputs, run_backtest_campaign
from recsys.marketing.candidates import HistoryCandidateConfig
from recsys.rules.config import RulesConfig, load_rules, rules_from_cfg
from recsys.rules.plan_io import read_candidates

SOURCES = ("history", "bundle")


def rules_of(cfg: DictConfig) -> RulesConfig:
    """The rules YAML at ``rules_path`` if set, else the composed ``rules`` group."""
    if cfg.get("rules_path"):
        return load_rules(cfg.rules_path)
    choice = HydraConfig.get().runtime.choices.get("rules") if HydraConfig.initialized() else None
    return rules_from_cfg(cfg.rules, f"conf/rules/{choice or 'default'}.yaml")


def candidates_of(cfg: DictConfig) -> pd.DataFrame | None:
    """``candidates_path`` if set; candidates retrieved from the bundle at ``bundle_dir`` with
    ``candidates.source=bundle``; None for the history source (built as of the cut-off)."""
    if cfg.get("candidates_path"):
        return read_candidates(cfg.candidates_path)
    c = cfg.candidates
    if c.source not in SOURCES:
        raise ConfigError(f"candidates.source must be one of {SOURCES}, got {c.source!r}")
    if c.source == "history":
        return None
    if not cfg.get("bundle_dir"):
        raise ConfigError("campaign: candidates.source=bundle needs bundle_dir=<serving bundle>")
    from recsys.serving.candidates import write_candidates

    target = Path(cfg.output_dir).parent / f"{cfg.campaign_id}_candidates.parquet"
    return read_candidates(write_candidates(Path(cfg.bundle_dir), Path(cfg.dataset_dir), int(c.k),
                                            bool(c.exclude_purchased), target))


def _table(path: str | None, columns: tuple[str, ...]) -> pd.DataFrame | None:
    if not path:
        return None
    frame = read_candidates(path)
    from recsys.errors import DataError

    for col in columns:
        if col not in frame.columns:
            raise DataError("table lacks a required column", file=str(path), column=col)
    return frame


def inputs(cfg: DictConfig) -> CampaignInputs:
    c, k = cfg.context, cfg.candidates
    aliases = OmegaConf.to_container(cfg.mining.columns, resolve=True)
    assert isinstance(aliases, dict)
    contacts = _table(c.contacts_path, ("user_idx", "sent_at"))
    return CampaignInputs(
        campaign_id=str(cfg.campaign_id),
        dataset_dir=Path(cfg.dataset_dir),
        mining_dir=Path(cfg.mining_dir),
        output_dir=Path(cfg.output_dir),
        purchase_events=tuple(str(e) for e in c.purchase_events),
        aliases={str(a): [str(x) for x in v] for a, v in aliases.items()},
        demand_window_days=float(c.demand_window_days),
        candidates=HistoryCandidateConfig(int(k.k), float(k.popularity_days),
                                          float(k.repeat_weight), float(k.popularity_weight)),
        now=pd.Timestamp(c.now) if c.now else None,
        contacts=None if contacts is None else contacts.assign(
            sent_at=pd.to_datetime(contacts["sent_at"])),
        user_columns=_table(c.user_columns_path, ("user_idx",)),
    )


def backtest_config(cfg: DictConfig) -> BacktestConfig:
    b = cfg.backtest
    return BacktestConfig(
        cutoff=None if b.cutoff is None else str(b.cutoff), holdout_split=str(b.holdout_split),
        horizon_days=None if b.horizon_days is None else float(b.horizon_days),
        retention_days=float(b.retention_days), n_boot=int(b.n_boot),
        ci_level=float(b.ci_level), seed=int(b.seed), ks=tuple(int(x) for x in b.ks),
    )


def task(cfg: DictConfig) -> None:
    """Run one campaign backtest and print the headline KPIs."""
    inp = inputs(cfg)
    kpis = run_backtest_campaign(inp, rules_of(cfg), backtest_config(cfg), candidates_of(cfg))
    overall = kpis["backtest"]["overall"]["all"]
    heads = ", ".join(f"{k} {overall[k]['value']:.4g}" for k in
                      ("reach", "hit_rate", "conversion_rate", "revenue", "roi"))
    print(f"campaign: {overall['users']} users, cut-off {kpis['cutoff']}: {heads} -> "
          f"{inp.output_dir}")


def main() -> None:
    run_app("campaign", task)


if __name__ == "__main__":
    main()
