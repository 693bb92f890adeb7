"""Benchmark: the vectorised response simulator against a per-row Python loop of the same model.

    .venv/bin/python scripts/bench_simulate.py [--users 100000] [--items 10] [--ref-users 100000]

Rebuilds the latent users and items of the default synthetic world (conf/data/synthetic.yaml) with
``--users`` users (no events are drawn), makes a plan of ``--items`` items per user with random
channels, send hours and offers (conf/simulate.yaml's response model), draws one set of uniforms
and runs both implementations on the first ``--ref-users`` users: outcomes must be equal. Prints
rows/s of each and the speed-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from recsys.data.synthetic.parse import parse_config
from recsys.marketing.response import (
    NONE,
    POINTS,
    PRICE,
    SERVICE,
    PlanArrays,
    reference_utility,
    respond,
    respond_loop,
)
from recsys.marketing.settings import simulate_config
from recsys.marketing.simulate import draws
from recsys.marketing.world import from_config

ROOT = Path(__file__).resolve().parents[1]


def make_plan(n_users: int, per_user: int, n_world_users: int, n_items: int, prices: np.ndarray,
              n_channels: int, day: int, seed: int = 1) -> PlanArrays:
    rng = np.random.default_rng(seed)
    item = np.stack([rng.choice(n_items, per_user, replace=False) for _ in range(min(n_users, 64))])
    item = item[rng.integers(0, len(item), n_users)].ravel()  # distinct items per user
    offer = rng.choice([NONE, PRICE, POINTS, SERVICE], n_users, p=[0.4, 0.35, 0.15, 0.1])
    return PlanArrays(
        user=np.arange(n_users) % n_world_users, channel=rng.integers(-1, n_channels, n_users),
        hour=rng.integers(0, 24, n_users), offer=offer,
        depth=np.where(offer == PRICE, 0.2, np.where(offer == POINTS, 0.05, 0.0)),
        fixed_cost=np.where(offer == SERVICE, 1.0, 0.0), contact_cost=np.full(n_users, 0.01),
        row_user=np.repeat(np.arange(n_users), per_user), item=item, price=prices[item], day=day)


def head(p: PlanArrays, n: int) -> PlanArrays:
    rows = int(np.searchsorted(p.row_user, n))
    per_user = {f.name: getattr(p, f.name)[:n] for f in dataclasses.fields(p)
                if f.name in ("user", "channel", "hour", "offer", "depth", "fixed_cost",
                              "contact_cost")}
    return dataclasses.replace(p, **per_user, row_user=p.row_user[:rows], item=p.item[:rows],
                               price=p.price[:rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--ref-users", type=int, default=100_000)
    args = ap.parse_args()
    gen = OmegaConf.to_container(OmegaConf.load(ROOT / "recsys/conf/data/synthetic.yaml").generator)
    assert isinstance(gen, dict)
    gen["n_users"] = args.users
    t0 = time.perf_counter()
    world = from_config(parse_config(gen))
    sim = simulate_config(OmegaConf.load(ROOT / "recsys/conf/simulate.yaml").simulate)
    cfg = sim.response
    day = world.config.n_days - 1
    plan = make_plan(args.users, args.items, len(world.pop.loyalty), len(world.cat.price),
                     world.cat.price, len(cfg.channels), day)
    u_ref = reference_utility(world, day)
    _, u_open, u_buy, _ = draws(sim.seed, len(plan.user), len(plan.item))
    print(f"world of {args.users} users x {len(world.cat.price)} items built in "
          f"{time.perf_counter() - t0:.1f}s; plan {len(plan.item)} rows")

    t_fast = float("inf")
    for _ in range(3):  # best of 3: the first call also pays for page faults of fresh arrays
        t0 = time.perf_counter()
        fast = respond(world, cfg, plan, u_ref, u_open, u_buy)
        t_fast = min(t_fast, time.perf_counter() - t0)
    ref_plan = head(plan, args.ref_users)
    n_rows = len(ref_plan.item)
    t0 = time.perf_counter()
    slow = respond_loop(world, cfg, ref_plan, u_ref, u_open[: args.ref_users], u_buy[:n_rows])
    t_slow = time.perf_counter() - t0
    n = args.ref_users
    equal = (np.array_equal(fast.opened[:n], slow.opened)
             and np.array_equal(fast.bought[:n_rows], slow.bought)
             and np.array_equal(fast.purchases[:n], slow.purchases)
             and np.allclose(fast.revenue[:n], slow.revenue)
             and np.allclose(fast.promotion_cost[:n], slow.promotion_cost))
    fast_rate, slow_rate = len(plan.item) / t_fast, n_rows / t_slow
    print(f"{'implementation':<22}{'rows':>10}{'seconds':>10}{'rows/s':>14}")
    print(f"{'vectorised (best of 3)':<22}{len(plan.item):>10}{t_fast:>10.3f}{fast_rate:>14,.0f}")
    print(f"{'per-row Python loop':<22}{n_rows:>10}{t_slow:>10.3f}{slow_rate:>14,.0f}")
    print(f"speed-up: {fast_rate / slow_rate:.1f}x; equal outcomes on the {n_rows} compared rows: "
          f"{equal} (opens {int(fast.opened[:n].sum())}, purchases {int(fast.bought[:n_rows].sum())})")
    if not equal:
        raise SystemExit("vectorised and loop outcomes differ")


if __name__ == "__main__":
    main()
