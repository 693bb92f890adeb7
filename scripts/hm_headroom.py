"""What the H&M leave-last-day test purchases leave to learn: shares of repurchases, new colours
of products already bought (same product code, the first 7 digits of ``article_id``) and items
never bought before the test, and Recall@12 of heuristics that use them, from the same
train + validation history as ``scripts/bench_quality.py``.

    python scripts/hm_headroom.py [--data outputs/data/hm]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
K = 12


def ranked_history(hist: pd.DataFrame, half_life_days: float) -> dict[int, list[int]]:
    """Each user's items by recency-weighted purchase count (the repurchase baseline's order)."""
    age = (hist.groupby("user_idx")["timestamp"].transform("max") - hist["timestamp"]).dt.days
    w = hist.assign(w=np.exp2(-age / half_life_days)).groupby(["user_idx", "item_idx"])["w"].sum()
    w = w.reset_index().sort_values(["user_idx", "w"], ascending=[True, False])
    return {int(u): g["item_idx"].tolist() for u, g in w.groupby("user_idx")}


def recall(recs: dict[int, list[int]], truth: dict[int, set[int]]) -> float:
    return float(np.mean([len(set(recs.get(u, [])[:K]) & t) / len(t) for u, t in truth.items()]))


def fill(first: list[int], *more: list[int]) -> list[int]:
    out = list(dict.fromkeys(first))
    for source in more:
        for i in source:
            if len(out) >= K:
                return out
            if i not in out:
                out.append(i)
    return out[:K]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "outputs" / "data" / "hm")
    args = parser.parse_args()
    read = lambda name: pd.read_parquet(args.data / f"{name}.parquet")  # noqa: E731
    hist = pd.concat([read("train"), read("val")]).sort_values("timestamp")
    test, items = read("test"), read("items")
    truth = {int(u): set(g) for u, g in test.groupby("user_idx")["item_idx"]}
    code = items.sort_values("item_idx")["item_id"].str[:7].to_numpy()
    siblings = pd.Series(np.arange(len(code))).groupby(code).apply(list).to_dict()
    bought = {int(u): set(g) for u, g in hist.groupby("user_idx")["item_idx"]}
    seen = set(hist["item_idx"])
    targets = [(u, t) for u, ts in truth.items() for t in ts]
    rep = np.mean([t in bought.get(u, set()) for u, t in targets])
    sib = np.mean([t not in bought.get(u, set()) and any(code[t] == code[b] for b in bought.get(u, ()))
                   for u, t in targets])
    cold = np.mean([t not in seen for u, t in targets])
    print(f"{len(truth)} test users, {len(targets)} test purchases (train+val history)")
    print(f"  bought before by the same user (repurchase) : {rep:6.1%}")
    print(f"  new colour of a product the user bought     : {sib:6.1%}")
    print(f"  never bought by anyone before the test      : {cold:6.1%} "
          f"(on {len(set(test['item_idx']) - seen)} of the {len(code)} catalogue items)")
    ranked = ranked_history(hist, 30.0)
    popular = hist["item_idx"].value_counts().index.tolist()
    last_first = {int(u): list(dict.fromkeys(g.tolist()[::-1]))
                  for u, g in hist.groupby("user_idx")["item_idx"]}
    print(f"Recall@{K}:")
    label = "repurchase, then popularity"
    print(f"  {label:50s}: {recall({u: fill(ranked.get(u, []), popular) for u in truth}, truth):.4f}")
    for n in (3, 5, 8, 10):
        recs = {}
        for u in truth:
            sibs = [s for b in last_first.get(u, []) for s in siblings[code[b]]
                    if s not in bought.get(u, set())]
            recs[u] = fill(ranked.get(u, [])[:n], sibs, ranked.get(u, []), popular)
        label = f"top-{n} history, then new colours of recent buys"
        print(f"  {label:50s}: {recall(recs, truth):.4f}")


if __name__ == "__main__":
    main()
