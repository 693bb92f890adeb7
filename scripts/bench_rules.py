"""Benchmark: vectorised ``apply_rules`` against a per-row Python loop over the same rules.

    .venv/bin/python scripts/bench_rules.py [--rows 1000000] [--ref-rows 100000]

Builds a synthetic context (users, items, history, association rules, contacts) and a candidate
frame of ``--rows`` rows (20 candidates per user), runs the default rules (conf/rules/default.yaml,
with a promoted-item list and tight budgets so every step does work) on all rows, then runs both
implementations on the first ``--ref-rows`` rows, checks that they agree, and prints rows/s and
the speed-up. The reference is linear in rows, so its rows/s on the subsample stands for 1M rows.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recsys.rules import RuleContext, apply_rules, parse_rules
from recsys.rules.config import RulesConfig
from recsys.rules.context import ITEM_DEFAULTS, USER_DEFAULTS, item_signals, with_defaults
from recsys.rules.reference import compare, reference_apply
from recsys.runtime import apply_runtime, default_runtime

ROOT = Path(__file__).resolve().parents[1]
PER_USER = 20


# --------------------------------------------------------------------------- synthetic inputs
def make_context(n_users: int, n_items: int, seed: int = 0) -> RuleContext:
    rng = np.random.default_rng(seed)
    now = pd.Timestamp("2024-06-30 18:30")
    cats = np.array(["tops", "trousers", "shoes", "bags", "hats", "wine"], dtype=object)
    users = pd.DataFrame({
        "user_idx": np.arange(n_users),
        "user_id": [f"u{i}" for i in range(n_users)],
        "age": np.where(rng.random(n_users) < 0.03, np.nan, rng.integers(15, 80, n_users)),
        "marketing_consent": rng.random(n_users) < 0.85,
        "social_image_consent": rng.random(n_users) < 0.6,
        "preferred_channel": rng.choice(np.array(["app_push", "email", "sms", "social_ads", None],
                                                 dtype=object), n_users),
        "frequency": rng.poisson(2.0, n_users),
        "f_score": rng.integers(0, 6, n_users),
        "churn_proba": np.where(rng.random(n_users) < 0.1, np.nan, rng.random(n_users)),
        "segment": rng.choice(np.array(["champions", "promising", "at_risk", "hibernating"],
                                       dtype=object), n_users),
        "price_sensitive": rng.random(n_users) < 0.2,
        "quality_focused": rng.random(n_users) < 0.1,
        "top_hour": rng.choice([-1, 7, 12, 19, 22], n_users),
    })
    price = np.round(rng.lognormal(3.3, 0.6, n_items), 2)
    items = pd.DataFrame({
        "item_idx": np.arange(n_items),
        "item_id": [f"i{i}" for i in range(n_items)],
        "category": rng.choice(cats, n_items),
        "price": price,
        "cost": np.round(price * rng.uniform(0.4, 0.9, n_items), 2),
        "stock": np.where(rng.random(n_items) < 0.05, 0, rng.integers(1, 200, n_items)),
        "first_seen": now - pd.to_timedelta(rng.integers(0, 400, n_items), unit="D"),
    })
    items["age_restricted"] = items["category"] == "wine"
    n_hist = n_users * 4
    history = pd.DataFrame({
        "user_idx": rng.integers(0, n_users, n_hist),
        "item_idx": rng.integers(0, n_items, n_hist),
        "timestamp": now - pd.to_timedelta(rng.integers(0, 180 * 24, n_hist), unit="h"),
        "quantity": np.ones(n_hist, dtype=np.int64),
    })
    ante = rng.integers(0, n_items, 300)
    cons = rng.integers(0, n_items, 300)
    item_rules = pd.DataFrame({
        "level": "item",
        "antecedents": [[f"i{a}"] if k % 5 else [f"i{a}", f"i{(a + 1) % n_items}"]
                        for k, a in enumerate(ante)],
        "consequents": [[f"i{c}"] for c in cons],
        "lift": rng.uniform(1.0, 4.0, 300),
    })
    cat_rules = pd.DataFrame({
        "level": "category",
        "antecedents": [[a] for a in cats[:4]],
        "consequents": [[b] for b in cats[1:5]],
        "lift": [1.5, 1.1, 2.0, 1.3],
    })
    contacts = pd.DataFrame({
        "user_idx": rng.integers(0, n_users, n_users),
        "sent_at": now - pd.to_timedelta(rng.integers(0, 14 * 24, n_users), unit="h"),
    })
    items = item_signals(with_defaults(items, ITEM_DEFAULTS), history, now, 28.0)
    return RuleContext(with_defaults(users, USER_DEFAULTS), items, history,
                       pd.concat([item_rules, cat_rules], ignore_index=True), now, contacts)


def make_candidates(n_rows: int, n_users: int, n_items: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), PER_USER)[:n_rows]
    rank = np.tile(np.arange(1, PER_USER + 1), n_users)[:n_rows]
    behaviour = np.sort(rng.random(n_rows))[::-1] * 0.0 + rng.random(n_rows)
    image = rng.random(n_rows) * 0.4
    social = rng.random(n_rows) * 0.3
    return pd.DataFrame({
        "user_idx": user, "item_idx": rng.integers(0, n_items, n_rows), "rank": rank,
        "score": behaviour + image + social, "behaviour_score": behaviour,
        "image_score": image, "social_score": social,
    })


def bench_rules(n_items: int, budget_scale: float) -> RulesConfig:
    raw = yaml.safe_load((ROOT / "conf/rules/default.yaml").read_text())
    raw["boosts"][0]["when"]["value"] = [f"i{i}" for i in range(0, n_items, 97)]
    for name, opt in raw["channels"]["options"].items():
        opt["budget"] = opt["budget"] * budget_scale * (0.2 if name == "app_push" else 1.0)
    raw["caps"]["campaign_budget"] = 2000.0 * budget_scale
    return parse_rules(raw, "bench")


def main() -> None:
    # imported here: tests load this file by path (tests/unit/rules/conftest.py), without scripts/
    # on sys.path, and only need the synthetic inputs above
    from _bench_common import best_of

    apply_runtime(default_runtime())  # the apps' process settings (conf/runtime), both sides alike
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--ref-rows", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=3, help="vectorised runs (best time kept)")
    args = p.parse_args()
    n_users = math.ceil(args.rows / PER_USER)
    ctx = make_context(n_users, args.items)
    cands = make_candidates(args.rows, n_users, args.items)
    cfg = bench_rules(args.items, budget_scale=n_users / 50_000)
    apply_rules(cands.head(1000), ctx, cfg)  # warm-up (imports, caches)

    full, t_full = best_of(args.repeat, lambda: apply_rules(cands, ctx, cfg))
    sub = cands.head(args.ref_rows)
    result, t_ours = best_of(args.repeat, lambda: apply_rules(sub, ctx, cfg))
    ours = result.recommendations
    t = time.perf_counter()
    ref = reference_apply(sub, ctx, cfg)
    t_ref = time.perf_counter() - t
    problems = compare(ours, ref)

    print(f"bench_rules: {len(cands):,} (user, candidate) rows, {n_users:,} users, "
          f"{args.items:,} items, {len(cfg.all_names)} rules")
    print(f"  vectorised apply_rules, {len(cands):,} rows: {t_full:8.3f} s  "
          f"{len(cands) / t_full:12,.0f} rows/s  -> {len(full.recommendations):,} plan rows")
    print(f"  vectorised apply_rules, {len(sub):,} rows: {t_ours:8.3f} s  "
          f"{len(sub) / t_ours:12,.0f} rows/s")
    print(f"  per-row Python loop,    {len(sub):,} rows: {t_ref:8.3f} s  "
          f"{len(sub) / t_ref:12,.0f} rows/s")
    print(f"  speed-up (rows/s, vectorised on {len(cands):,} vs loop): "
          f"{(len(cands) / t_full) / (len(sub) / t_ref):6.1f}x (goal >= 20x)")
    print(f"  speed-up (same {len(sub):,} rows): {t_ref / t_ours:6.1f}x")
    print(f"  results agree on the subsample: {problems if problems else 'yes'}")
    fired = {k: v for k, v in full.rule_counts.items() if v}
    print(f"  rule counts (1M run): {fired}")


if __name__ == "__main__":
    main()
