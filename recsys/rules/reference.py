"""A per-row Python implementation of :func:`recsys.rules.apply_rules` (same semantics).

It is the reference that ``scripts/bench_rules.py`` times against and that the tests compare the
vectorised engine with; it is slow on purpose (one Python iteration per row, user and item).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from recsys.rules.conditions import All, AnyOf, Condition, Leaf, Not
from recsys.rules.config import NO_CHANNEL, NO_PROMOTION, RulesConfig
from recsys.rules.context import RuleContext
from recsys.rules.explain import SOCIAL_IGNORED, SOCIAL_USED


def _null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT


def _cmp(v: Any, op: str, value: Any) -> bool:
    if op == "is_null":
        return _null(v)
    if op == "not_null":
        return not _null(v)
    if op == "!=":
        return not _cmp(v, "==", value)
    if op == "not_in":
        return not _cmp(v, "in", value)
    if _null(v) or (op not in ("in", "between") and _null(value)):
        return False
    if op == "==":
        return bool(v == value)
    if op == "in":
        return any(v == x for x in value)
    if op == "between":
        return bool(value[0] <= v <= value[1])
    return bool({"<": v < value, "<=": v <= value, ">": v > value, ">=": v >= value}[op])


def _get(name: str, row: dict[str, Any], user: dict[str, Any], item: dict[str, Any]) -> Any:
    if name.startswith("user."):
        return user[name[5:]]
    if name.startswith("item."):
        return item[name[5:]]
    if name in row:
        return row[name]
    return user[name] if name in user else item[name]


def _eval(c: Condition, row: dict[str, Any], user: dict[str, Any], item: dict[str, Any]) -> bool:
    if isinstance(c, Leaf):
        value = _get(c.ref, row, user, item) if c.ref else c.value
        if isinstance(_get(c.column, row, user, item), pd.Timestamp) and isinstance(value, str):
            value = pd.Timestamp(value)
        return _cmp(_get(c.column, row, user, item), c.op, value)
    if isinstance(c, Not):
        return not _eval(c.item, row, user, item)
    parts = (_eval(x, row, user, item) for x in c.items)
    return all(parts) if isinstance(c, All) else any(parts) if isinstance(c, AnyOf) else False


class _Lazy(dict[int, dict[str, Any]]):
    """Row dicts of a table built on first use from per-column lists."""

    def __init__(self, table: pd.DataFrame) -> None:
        super().__init__()
        self.cols = {c: table[c].tolist() for c in table.columns}

    def __missing__(self, key: int) -> dict[str, Any]:
        row = {c: v[key] for c, v in self.cols.items()}
        self[key] = row
        return row


class _CrossSell:
    """Per user (memoised): the (level, consequent) pairs of rules whose antecedents it owns."""

    def __init__(self, ctx: RuleContext, level: str, min_lift: float) -> None:
        self.owned: dict[int, dict[str, set[str]]] = defaultdict(lambda: {"item": set(),
                                                                         "category": set()})
        ids, cats = ctx.items["item_id"].tolist(), ctx.items["category"].tolist()
        for u, i in zip(ctx.history["user_idx"].tolist(), ctx.history["item_idx"].tolist(),
                        strict=True):
            self.owned[u]["item"].add(ids[i])
            self.owned[u]["category"].add(cats[i])
        self.rules = [r for r in ctx.association.to_dict("records") if r["lift"] >= min_lift
                      and (level == "both" or r["level"] == level)]
        self.memo: dict[int, set[tuple[str, Any]]] = {}

    def pairs(self, user: int) -> set[tuple[str, Any]]:
        if user not in self.memo:
            have = self.owned.get(user, {"item": set(), "category": set()})
            self.memo[user] = {(r["level"], c) for r in self.rules
                               if all(a in have[r["level"]] for a in r["antecedents"])
                               for c in r["consequents"]}
        return self.memo[user]


def _channel_ok(cfg: RulesConfig, name: str, user: dict[str, Any]) -> bool:
    opt = cfg.channels[name]
    return opt.enabled and (opt.when is None or _eval(opt.when, {}, user, {}))


def reference_apply(cands: pd.DataFrame, ctx: RuleContext, cfg: RulesConfig) -> pd.DataFrame:
    """Same semantics as apply_rules, one Python iteration per row / user / item."""
    users = _Lazy(ctx.users)
    items = _Lazy(ctx.items)
    rows = cands.to_dict("records")
    for pos, r in enumerate(rows):
        r["_pos"] = pos
    bought = set(zip(ctx.history["user_idx"].tolist(), ctx.history["item_idx"].tolist(), strict=True))
    xsell = {b.name: _CrossSell(ctx, b.level or "", b.min_lift or 0.0)
             for b in cfg.boosts if b.kind == "association"}
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for r in rows:
        u = users[r["user_idx"]]
        social = r["social_score"] if u["social_image_consent"] else 0.0
        r["_eff"] = r["score"] - r["social_score"] + social
        r["_social"] = social
        lo[r["user_idx"]] = min(lo.get(r["user_idx"], math.inf), r["_eff"])
        hi[r["user_idx"]] = max(hi.get(r["user_idx"], -math.inf), r["_eff"])
    per_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        uid, iid = r["user_idx"], r["item_idx"]
        u, it = users[uid], items[iid]
        span = hi[uid] - lo[uid]
        s = (r["_eff"] - lo[uid]) / span if span > 0 else 1.0
        if cfg.score_transform == "none":
            s = r["_eff"]
        removed = False
        for f in cfg.filters:
            if not f.enabled:
                continue
            if f.kind == "already_bought":
                hit = (uid, iid) in bought
            else:
                assert f.when is not None
                hit = _eval(f.when, r, u, it)
            if hit:
                removed = True
                break
        if removed:
            continue
        fired = []
        for b in cfg.boosts:
            if b.kind == "association":
                pairs = xsell[b.name].pairs(uid)
                hit = ("item", it["item_id"]) in pairs or ("category", it["category"]) in pairs
            else:
                hit = b.when is None or _eval(b.when, r, u, it)
            if not hit:
                continue
            if b.multiply is not None:
                s *= b.multiply
            elif b.add is not None:
                s += b.add
            else:
                v = _get(b.add_column or "", r, u, it)
                if _null(v) or not math.isfinite(v) or (b.weight or 0.0) * v == 0.0:
                    continue
                s += (b.weight or 0.0) * v
            fired.append(b.name)
        per_user[uid].append({**r, "_final": s, "_fired": fired})
    # ranking, caps
    plan_users: list[tuple[float, int]] = []
    lists: dict[int, list[dict[str, Any]]] = {}
    for uid in sorted(per_user):
        ranked = sorted(per_user[uid], key=lambda x: (-x["_final"], x["_pos"]))
        seen: dict[Any, int] = defaultdict(int)
        kept = []
        for x in ranked:
            cat = items[x["item_idx"]][cfg.caps.category_column]
            if cfg.caps.max_per_category is not None and not _null(cat):
                if seen[cat] >= cfg.caps.max_per_category:
                    continue
                seen[cat] += 1
            kept.append(x)
            if len(kept) == cfg.top_k:
                break
        lists[uid] = kept
        plan_users.append((-kept[0]["_final"], uid))
    plan_users.sort()
    # promotions with the campaign budget
    promo: dict[int, dict[str, Any]] = {}
    spent = 0.0
    for _, uid in plan_users:
        u = users[uid]
        rule = next((p for p in sorted(cfg.promotions, key=lambda p: p.priority)
                     if _eval(p.when, {}, u, {})), None)
        prices = [items[x["item_idx"]]["price"] for x in lists[uid]]
        prices = [p for p in prices if not _null(p)]
        mean = sum(prices) / len(prices) if prices else 0.0
        capped = False
        if rule is not None:
            cost = cfg.caps.expected_redemption * (rule.depth * mean + rule.fixed_cost)
            spent += cost
            if cfg.caps.campaign_budget is not None and spent > cfg.caps.campaign_budget + 1e-12:
                capped, rule = True, None
        promo[uid] = {"name": rule.name if rule else NO_PROMOTION, "capped": capped}
    # channels: rounds in value order
    order = list(cfg.channel_order)
    room = {n: math.inf if cfg.channels[n].cost <= 0
            else math.floor(cfg.channels[n].budget / cfg.channels[n].cost + 1e-9) for n in order}
    recent: dict[int, int] = defaultdict(int)
    if ctx.contacts is not None:
        since = ctx.now - pd.Timedelta(days=cfg.caps.contact_window_days)
        for uid, t in zip(ctx.contacts["user_idx"].tolist(), ctx.contacts["sent_at"].tolist(),
                          strict=True):
            if since < t <= ctx.now:
                recent[uid] += 1
    choices: dict[int, list[str]] = {}
    for _, uid in plan_users:
        u = users[uid]
        pref = u["preferred_channel"]
        pref = pref if isinstance(pref, str) and pref in order else None
        seq = ([pref] if pref else []) + [c for c in order if c != pref]
        choices[uid] = [c for c in seq if u["marketing_consent"] and _channel_ok(cfg, c, u)]
    chan: dict[int, tuple[str, int]] = {}
    for r in range(len(order)):
        for _, uid in plan_users:
            capped = cfg.caps.max_contacts is not None and recent[uid] >= cfg.caps.max_contacts
            if uid in chan or capped or r >= len(choices[uid]):
                continue
            c = choices[uid][r]
            if room[c] >= 1:
                room[c] -= 1
                chan[uid] = (c, r)
    out = []
    for uid in sorted(lists):
        u = users[uid]
        c, rnd = chan.get(uid, (NO_CHANNEL, -1))
        send = pd.NaT
        if c != NO_CHANNEL:
            opt = cfg.channels[c]
            h = u["top_hour"] if not _null(u["top_hour"]) and u["top_hour"] >= 0 else opt.default_hour
            if h < opt.send_window[0] or h >= opt.send_window[1]:
                h = opt.send_window[0]
            send = ctx.now.normalize() + pd.Timedelta(hours=float(h))
            if send <= ctx.now:
                send += pd.Timedelta(days=1)
        for rank, x in enumerate(lists[uid], start=1):
            it = items[x["item_idx"]]
            prule = next((p for p in sorted(cfg.pricing, key=lambda p: p.priority)
                          if _eval(p.when, {}, {}, it)), None)
            fired = list(x["_fired"])
            fired += [n for n in (promo[uid]["name"], prule.name if prule else None)
                      if n not in (None, NO_PROMOTION)]
            fired += ["campaign_budget"] if promo[uid]["capped"] else []
            capped = cfg.caps.max_contacts is not None and recent[uid] >= cfg.caps.max_contacts
            if u["marketing_consent"] and capped:
                fired.append("frequency_cap")
            elif u["marketing_consent"] and (rnd > 0 or (c == NO_CHANNEL and choices[uid])):
                fired.append("channel_budget")
            out.append({
                "user_idx": uid, "item_idx": x["item_idx"], "rank": rank, "score": x["_final"],
                "promotion": promo[uid]["name"], "channel": c,
                "send_time": send, "pricing_rule": prule.name if prule else "none",
                "rules_fired_set": frozenset(fired),
                "explanation": {"score_before": x["score"], "score_after": x["_final"],
                                "social_image": SOCIAL_USED if u["social_image_consent"]
                                else SOCIAL_IGNORED, "round": rnd},
            })
    return pd.DataFrame(out)


def compare(ours: pd.DataFrame, ref: pd.DataFrame) -> list[str]:
    """Differences between the two plans (empty when they agree)."""
    problems = []
    if len(ours) != len(ref):
        return [f"row counts differ: {len(ours)} vs {len(ref)}"]
    for col in ("user_idx", "item_idx", "rank", "promotion", "channel", "pricing_rule"):
        if not np.array_equal(ours[col].to_numpy(), ref[col].to_numpy()):
            problems.append(f"column {col} differs")
    if not np.allclose(ours["score"].to_numpy(), ref["score"].to_numpy()):
        problems.append("scores differ")
    times = [df["send_time"].astype("datetime64[ns]").fillna(pd.Timestamp(0)) for df in (ours, ref)]
    if not times[0].equals(times[1]):
        problems.append("send times differ")
    mine = [frozenset(s.split(";")) - {""} for s in ours["rules_fired"]]
    if mine != list(ref["rules_fired_set"]):
        problems.append("fired rules differ")
    return problems
