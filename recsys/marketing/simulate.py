"""``recsys-simulate``: a campaign plan + the synthetic world -> the outcome log ``recsys-adjust`` reads.

Every plan user with a channel is contacted unless drawn into the no-contact control group
(``control_share``, at random); held-out users keep their planned channel and promotion in the log
with ``sent`` 0, so that incremental effects can be measured per channel and promotion. Of the
contacted users with an offer, a random ``offer_holdout_share`` gets the message without the offer
(``offer_sent`` 0): the offer's own effect is measured against them. Draws come from one seeded
generator in a fixed order (control, open, buy, offer holdout), so a plan and a seed give one log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import ConfigError, DataError
from recsys.marketing.response import (
    NONE,
    POINTS,
    PRICE,
    PRICE_OFFERS,
    SERVICE,
    PlanArrays,
    ResponseConfig,
    expected,
    reference_utility,
    respond,
)
from recsys.marketing.world import LatentWorld
from recsys.rules.config import NO_CHANNEL

PLAN_COLUMNS = ("campaign_id", "user_id", "item_id", "channel", "send_time", "promotion",
                "promotion_offer", "promotion_depth", "promotion_fixed_cost")
TREATMENT, CONTROL = "treatment", "control"


@dataclass(frozen=True)
class SimulateConfig:
    response: ResponseConfig
    control_share: float
    seed: int
    offer_holdout_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.control_share < 1.0:
            raise ConfigError(f"simulate.control_share must be in [0, 1), got {self.control_share}")
        if not 0.0 <= self.offer_holdout_share < 1.0:
            raise ConfigError("simulate.offer_holdout_share must be in [0, 1), got "
                              f"{self.offer_holdout_share}")
        if len(self.response.open_base) != len(self.response.channels):
            raise ConfigError("simulate.response.open_base needs one value per channel")


def check_plan(plan: pd.DataFrame, source: str | None) -> None:
    """Required columns present and no duplicate (user, item) row."""
    for col in PLAN_COLUMNS:
        if col not in plan.columns:
            raise DataError("plan lacks a required column", file=source, column=col)
    dup = np.flatnonzero(plan.duplicated(["user_id", "item_id"]).to_numpy())
    if dup.size:
        r = int(dup[0])
        raise DataError(f"duplicate (user, item) row ({plan['user_id'].iloc[r]!r}, "
                        f"{plan['item_id'].iloc[r]!r})", file=source, row=r + 1, column="item_id")


def _offer_kind(offers: pd.Series) -> np.ndarray:
    names = offers.astype(str).to_numpy()
    return np.select([np.isin(names, PRICE_OFFERS), names == "points",
                      names == "value_added_service"], [PRICE, POINTS, SERVICE], NONE)


def plan_arrays(plan: pd.DataFrame, world: LatentWorld, cfg: ResponseConfig,
                channel_cost: Mapping[str, float],
                source: str | None) -> tuple[PlanArrays, pd.DataFrame]:
    """Arrays of the plan's users with a channel and their first plan row (ids, channel, segment,
    promotion) for the log."""
    rows = plan[plan["channel"].astype(str) != NO_CHANNEL]
    rows = rows.sort_values("user_id", kind="stable").reset_index(drop=True)
    first = rows.groupby("user_id", sort=False).head(1).reset_index(drop=True)
    row_user = pd.factorize(rows["user_id"])[0].astype(np.int64)
    names = list(cfg.channels)
    unknown = sorted(set(first["channel"].astype(str)) - set(names))
    if unknown:
        raise ConfigError(f"simulate.response.channels lacks the plan's channel {unknown[0]!r}")
    channel = np.array([names.index(c) for c in first["channel"].astype(str)], dtype=np.int64)
    send = pd.to_datetime(first["send_time"])
    days = ((send.min() - pd.Timestamp(world.start)) / pd.Timedelta(days=1)) if len(send) else 0.0
    item = world.positions(rows["item_id"], "item", source)
    arrays = PlanArrays(
        user=world.positions(first["user_id"], "user", source),
        channel=channel,
        hour=send.dt.hour.fillna(0).to_numpy(np.int64),
        offer=_offer_kind(first["promotion_offer"]),
        depth=first["promotion_depth"].to_numpy(float),
        fixed_cost=first["promotion_fixed_cost"].to_numpy(float),
        contact_cost=first["channel"].astype(str).map(dict(channel_cost)).fillna(0.0).to_numpy(float),
        row_user=row_user, item=item, price=world.cat.price[item].astype(float),
        day=int(np.clip(np.floor(days), 0, world.config.n_days - 1)),
    )
    return arrays, first


def draws(seed: int, n_users: int, n_rows: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Uniforms for control membership and opens (per user), purchases (per row) and the offer
    holdout (per user), in this order."""
    rng = np.random.default_rng(seed)
    return rng.random(n_users), rng.random(n_users), rng.random(n_rows), rng.random(n_users)


def simulate_plan(plan: pd.DataFrame, world: LatentWorld, cfg: SimulateConfig,
                  channel_cost: Mapping[str, float], source: str | None = None) -> pd.DataFrame:
    """The outcome log of ``plan``: one row per user with a channel (treatment or control)."""
    check_plan(plan, source)
    planned, first = plan_arrays(plan, world, cfg.response, channel_cost, source)
    u_control, u_open, u_buy, u_offer = draws(cfg.seed, len(planned.user), len(planned.item))
    control = u_control < cfg.control_share
    no_offer = (u_offer < cfg.offer_holdout_share) & (planned.offer != NONE) & ~control
    executed = dataclasses.replace(planned, offer=np.where(no_offer, NONE, planned.offer),
                                   depth=np.where(no_offer, 0.0, planned.depth))
    arrays = dataclasses.replace(executed, channel=np.where(control, -1, planned.channel))
    u_ref = reference_utility(world, arrays.day)
    res = respond(world, cfg.response, arrays, u_ref, u_open, u_buy)
    sent = (arrays.channel >= 0).astype(np.int64)
    contact_cost = arrays.contact_cost * sent
    exp = expected(world, cfg.response, executed, u_ref)
    seg = first["segment"].astype(str) if "segment" in first.columns else "all"
    reason = first["channel_reason"].astype(str) if "channel_reason" in first.columns else None
    log = pd.DataFrame({
        "campaign_id": first["campaign_id"].astype(str),
        "user_id": first["user_id"].astype(str),
        "group": np.where(control, CONTROL, TREATMENT),
        "channel": first["channel"].astype(str),
        "segment": seg,
        "promotion": first["promotion"].astype(str),
        "sent": sent,
        "offer_sent": (sent * (arrays.offer != NONE)).astype(np.int64),
        "opened": res.opened.astype(np.int64),
        "converted": res.converted.astype(np.int64),
        "purchases": res.purchases,
        "revenue": np.round(res.revenue, 6),
        "promotion_cost": np.round(res.promotion_cost, 6),
        "contact_cost": contact_cost,
        "cost": np.round(res.promotion_cost + contact_cost, 6),
        "p_treated": exp.p_treated,
        "p_control": exp.p_control,
        "expected_revenue": np.where(sent > 0, exp.revenue_treated, exp.revenue_control),
        "expected_cost": np.where(sent > 0, exp.promotion_cost_treated + contact_cost, 0.0),
        "expected_revenue_control": exp.revenue_control,   # the same user not contacted
    })
    if reason is not None:  # the plan's channel was the user's preferred one
        log.insert(log.columns.get_loc("opened"), "preferred",
                   (reason == "preferred").to_numpy(np.int64))
    return log
