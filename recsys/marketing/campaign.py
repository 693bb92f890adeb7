"""A campaign planned as of a cut-off and backtested on the real purchases after it.

The rules see only what was known at the cut-off: purchase history strictly before it (the
already-bought filter, demand signals), mining outputs whose reference time is not after it, and
candidates from the caller or from the history alone. Outcomes are the holdout purchases in
[cut-off, cut-off + horizon).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data import load_dataset
from recsys.data.atomic import atomic_directory
from recsys.data.schema import SPLITS
from recsys.errors import ConfigError
from recsys.marketing.backtest import GROUPS, kpi_table, kpis_json, user_outcomes
from recsys.marketing.candidates import HistoryCandidateConfig, history_candidates
from recsys.marketing.report import render_backtest
from recsys.marketing.window import Window, make_window
from recsys.mining.inputs import purchases_with_amount
from recsys.rules.config import RulesConfig
from recsys.rules.context import LoadedContext, RuleContext, build_context
from recsys.rules.engine import RuleResult, apply_rules
from recsys.rules.metrics import before_after
from recsys.rules.plan_io import write_plan_csv, write_plan_parquet
from recsys.rules.summary import render_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestConfig:
    """The window and the statistics of a backtest (campaign.yaml ``backtest``)."""

    cutoff: str | None
    holdout_split: str
    horizon_days: float | None
    retention_days: float
    n_boot: int
    ci_level: float
    seed: int
    ks: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.horizon_days is not None and self.horizon_days <= 0:
            raise ConfigError(f"backtest.horizon_days must be > 0, got {self.horizon_days}")
        if not 0.0 < self.ci_level < 1.0 or self.n_boot < 1:
            raise ConfigError("backtest: need 0 < ci_level < 1 and n_boot >= 1")


@dataclass(frozen=True)
class CampaignInputs:
    """Where a campaign reads from and writes to, and what it knows besides the dataset."""

    campaign_id: str
    dataset_dir: Path
    mining_dir: Path
    output_dir: Path
    purchase_events: tuple[str, ...]
    aliases: dict[str, list[str]]
    demand_window_days: float
    candidates: HistoryCandidateConfig
    now: pd.Timestamp | None = None            # campaign time; None: the cut-off
    contacts: pd.DataFrame | None = None       # past messages (user_idx, sent_at)
    user_columns: pd.DataFrame | None = None   # extra user columns (user_idx, ...), e.g. uplift


@dataclass(frozen=True)
class PlannedCampaign:
    plan: pd.DataFrame
    result: RuleResult
    context: RuleContext
    window: Window
    candidates: pd.DataFrame
    loaded: LoadedContext


def _check_mining(loaded: LoadedContext, cutoff: pd.Timestamp) -> None:
    now = loaded.mining.meta.get("now")
    if now is not None and pd.Timestamp(now) >= cutoff:
        raise ConfigError(f"mining_dir {loaded.mining.path} was mined up to {now}, not before the "
                          f"cut-off {cutoff}: mine only history before it (mining.history_splits)")


def plan_campaign(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig,
                  candidates: pd.DataFrame | None = None) -> PlannedCampaign:
    """Rules applied to ``candidates`` (None: history candidates) with the context as of the
    cut-off."""
    window = make_window(load_dataset(inp.dataset_dir), bt.cutoff, bt.holdout_split,
                         bt.horizon_days)
    loaded = build_context(inp.dataset_dir, inp.mining_dir, history_splits=list(SPLITS),
                           purchase_events=inp.purchase_events, aliases=inp.aliases,
                           demand_window_days=inp.demand_window_days, now=window.cutoff)
    _check_mining(loaded, window.cutoff)
    now = inp.now if inp.now is not None else window.cutoff
    items = loaded.context.items
    bought = purchases_with_amount(window.history, items, inp.purchase_events)
    users = loaded.context.users
    if inp.user_columns is not None:
        extra = inp.user_columns.drop(columns=[c for c in inp.user_columns.columns
                                               if c in users.columns and c != "user_idx"])
        users = users.merge(extra, on="user_idx", how="left")
    ctx = dataclasses.replace(loaded.context, users=users, now=now, contacts=inp.contacts,
                              history=bought[["user_idx", "item_idx", "timestamp", "quantity"]])
    if candidates is None:
        cat = ctx.items["category"] if "category" in ctx.items.columns else pd.Series(0, index=items.index)
        codes = pd.factorize(cat.astype(str))[0]
        candidates = history_candidates(bought, len(ctx.users), codes, window.cutoff, inp.candidates)
    result = apply_rules(candidates, ctx, rules, source="candidates")
    plan = result.recommendations
    plan.insert(0, "campaign_id", inp.campaign_id)
    return PlannedCampaign(plan, result, ctx, window, candidates, loaded)


def backtest(pc: PlannedCampaign, rules: RulesConfig, bt: BacktestConfig,
             purchase_events: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-user outcomes, long KPI table with CIs) of the plan on the holdout purchases."""
    items = pc.context.items
    hold = purchases_with_amount(pc.window.holdout, items, purchase_events)
    hist = purchases_with_amount(pc.window.history, items, purchase_events)
    cost = {name: opt.cost for name, opt in rules.channels.items()}
    users = user_outcomes(pc.plan, hold, hist, cost, pc.window.cutoff, bt.retention_days)
    return users, kpi_table(users, GROUPS, bt.n_boot, bt.ci_level, bt.seed)


def run_backtest_campaign(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig,
                          candidates: pd.DataFrame | None = None) -> dict[str, Any]:
    """Plan, backtest and write plan.parquet/csv, summary.md, kpis.json/csv, user_outcomes.parquet,
    rule_counts.json and removed.parquet atomically; return the KPIs."""
    pc = plan_campaign(inp, rules, bt, candidates)
    users, table = backtest(pc, rules, bt, inp.purchase_events)
    metrics = before_after(pc.candidates, pc.plan, pc.window.holdout, bt.ks, inp.purchase_events)
    kpis: dict[str, Any] = {
        "cutoff": str(pc.window.cutoff), "end": str(pc.window.end),
        "holdout_purchases": len(purchases_with_amount(pc.window.holdout, pc.context.items,
                                                           inp.purchase_events)),
        "backtest": kpis_json(table),
        "retrieval": metrics.set_index("stage").to_dict(orient="index"),
    }
    summary = render_summary(inp.campaign_id, pc.plan, pc.result.rule_counts, len(pc.candidates),
                             None, metrics)
    summary += "\n" + render_backtest(table, pc.window, bt)
    with atomic_directory(inp.output_dir) as tmp:
        write_plan_parquet(pc.plan, tmp / "plan.parquet")
        write_plan_csv(pc.plan, tmp / "plan.csv")
        (tmp / "summary.md").write_text(summary)
        (tmp / "rule_counts.json").write_text(json.dumps(pc.result.rule_counts, indent=2))
        pc.result.removed.to_parquet(tmp / "removed.parquet", index=False)
        (tmp / "kpis.json").write_text(json.dumps(kpis, indent=2, default=str))
        table.to_csv(tmp / "kpis.csv", index=False)
        users.to_parquet(tmp / "user_outcomes.parquet", index=False)
    log.info("campaign backtest written to %s", inp.output_dir)
    return kpis
