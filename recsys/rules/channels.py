"""Channel and send time per user: consent, eligibility, preference, budgets, active hours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.rules.config import NO_CHANNEL, RulesConfig
from recsys.rules.frame import EvalFrame

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


def contact_capped(frame: EvalFrame, cfg: RulesConfig, users: np.ndarray) -> np.ndarray:
    """Users who already had ``max_contacts`` messages within the contact window."""
    contacts = frame.ctx.contacts
    if cfg.caps.max_contacts is None or contacts is None or contacts.empty:
        return np.zeros(len(users), dtype=bool)
    since = frame.ctx.now - cfg.caps.contact_window_days * DAY
    recent = contacts[(contacts["sent_at"] > since) & (contacts["sent_at"] <= frame.ctx.now)]
    n = np.bincount(recent["user_idx"].to_numpy(np.int64), minlength=len(frame.ctx.users))
    return n[users] >= cfg.caps.max_contacts


def channel_choices(frame: EvalFrame, cfg: RulesConfig, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user, eligible channel ids in preference order (padded with C) and the preferred id.
    The order is the user's preferred channel, then ``channels.order``; users whose preferred
    channel has a ``channels.routes`` entry take that order instead."""
    order = list(cfg.channel_order)
    c = len(order)
    pref_names = frame.ctx.users["preferred_channel"].astype("object").to_numpy()[users]
    pref = np.array([order.index(p) if isinstance(p, str) and p in order else c for p in pref_names],
                    dtype=np.int64)
    ids = np.arange(c)
    rank = np.where(ids[None, :] == pref[:, None], -1, ids[None, :])  # preferred first
    prefs = np.argsort(rank, axis=1, kind="stable")
    for key, route in cfg.channel_routes.items():  # a learned order for users preferring ``key``
        prefs[pref_names == key] = [order.index(name) for name in route]
    consent = frame.ctx.users["marketing_consent"].to_numpy(dtype=bool)[users]
    elig = np.zeros((len(users), c), dtype=bool)
    for j, name in enumerate(order):
        opt = cfg.channels[name]
        ok = np.ones(len(users), dtype=bool) if opt.when is None else frame.mask(opt.when, "user")[users]
        elig[:, j] = consent & opt.enabled & ok
    ordered_elig = np.take_along_axis(elig, prefs, axis=1)
    first = np.argsort(~ordered_elig, axis=1, kind="stable")
    choices = np.where(np.take_along_axis(ordered_elig, first, axis=1),
                       np.take_along_axis(prefs, first, axis=1), c)
    return choices, pref


def send_times(frame: EvalFrame, cfg: RulesConfig, users: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Next time at the user's top active hour, moved into the channel's send window."""
    order = list(cfg.channel_order)
    opts = [cfg.channels[n] for n in order]
    sent = channel < len(order)
    ch = np.where(sent, channel, 0)
    start = np.array([o.send_window[0] for o in opts])[ch]
    end = np.array([o.send_window[1] for o in opts])[ch]
    default = np.array([o.default_hour for o in opts])[ch]
    top = (frame.ctx.users["top_hour"].to_numpy(dtype=float)[users]
           if "top_hour" in frame.ctx.users.columns else np.full(len(users), np.nan))
    hour = np.where(np.isfinite(top) & (top >= 0), top, default)
    hour = np.where((hour < start) | (hour >= end), start, hour)
    now = frame.ctx.now
    t = now.normalize() + pd.to_timedelta(hour, unit="h")
    t = t.where(t > now, t + DAY)
    return np.where(sent, t.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))


def assign_channels(
    frame: EvalFrame, cfg: RulesConfig, users: np.ndarray
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per entry of ``users`` (highest value first): channel, reason, send_time.

    No marketing consent means no channel. Budgets (``budget // cost`` messages per channel) are
    filled in rounds: every unserved user asks for its next eligible channel, and each channel
    accepts askers in value order while it has room.
    """
    order = list(cfg.channel_order)
    c = len(order)
    choices, pref = channel_choices(frame, cfg, users)
    consent = frame.ctx.users["marketing_consent"].to_numpy(dtype=bool)[users]
    capped = contact_capped(frame, cfg, users)
    room = np.array([np.inf if cfg.channels[n].cost <= 0
                     else np.floor(cfg.channels[n].budget / cfg.channels[n].cost + 1e-9)
                     for n in order])
    assigned = np.full(len(users), c, dtype=np.int64)
    got_round = np.full(len(users), -1, dtype=np.int64)
    for r in range(c):
        asking = (assigned == c) & (choices[:, r] < c) & ~capped
        for j in range(c):
            askers = np.flatnonzero(asking & (choices[:, r] == j))
            take = askers[: int(min(room[j], askers.size))]
            assigned[take], got_round[take] = j, r
            room[j] -= take.size
    reason = np.select(
        [~consent, capped, (got_round == 0) & (assigned == pref), got_round == 0, got_round > 0,
         choices[:, 0] == c],
        ["no_marketing_consent", "frequency_cap", "preferred", "order", "budget_fallback",
         "no_eligible_channel"],
        "budget_exhausted",
    )
    out = pd.DataFrame({"channel": pd.Categorical.from_codes(assigned, categories=[*order, NO_CHANNEL]),
                        "channel_reason": pd.Categorical(reason),
                        "send_time": send_times(frame, cfg, users, assigned)})
    counts = {f"channel:{n}": int((out["channel"] == n).sum()) for n in [*order, NO_CHANNEL]}
    counts["frequency_cap"] = int((capped & consent).sum())
    counts["channel_budget"] = int(np.isin(reason, ["budget_fallback", "budget_exhausted"]).sum())
    counts["no_marketing_consent_channel"] = int((~consent).sum())
    return out, counts
