"""Benchmark: the two-stage pipeline (candidate sources + pair features + LightGBM ranking) per
user, and its vectorised feature builder against a per-user Python loop of the same features.

    .venv/bin/python scripts/bench_ranking.py [--hm outputs/data/hm] [--users 100000]
        [--items 20000] [--ref-users 300]

1. H&M: every user of the processed dataset at ``--hm`` (skipped when absent) gets candidates,
   features and ranked top-12 from the ranker trained on the validation labels.
2. A random world of ``--users`` x ``--items`` (Zipf item popularity, ~20 purchases and ~60
   weighted views / clicks per user over 120 days, product groups of 5 items, a colour each):
   the ranker is trained on the last week's labels, then every user is ranked as of the end.
   Users per second per stage and peak resident memory.
3. Features of ``--ref-users`` users of that world (one batch of the pipeline): ``build_features``
   against a plain per-user loop computing every one of its features over the same history
   (dicts per user and per item, built once beforehand as the vectorised statistics are),
   which must give the same values.
Configs are the package's (conf/candidates/default.yaml, conf/ranker/lambdarank.yaml and their
data/<name>.yaml); one LightGBM thread.
"""

from __future__ import annotations

import argparse
import bisect
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from _bench_common import PeakRSS, rss_mib, timed
from omegaconf import OmegaConf

from recsys.ranking.candidates import CandidateSet, merge
from recsys.ranking.config import RankingConfig, build_catalog, ranking_config
from recsys.ranking.features import Catalog, history_stats
from recsys.ranking.history import History, events_before, history_as_of
from recsys.ranking.pipeline import Period, TwoStage, popularity_segments

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "recsys" / "conf"


def config(data: str | None) -> dict[str, Any]:
    cand = OmegaConf.load(CONF / "candidates" / "default.yaml")
    if data is not None and (CONF / "candidates" / "data" / f"{data}.yaml").is_file():
        cand = OmegaConf.merge(cand, OmegaConf.load(CONF / "candidates" / "data" / f"{data}.yaml"))
    ranker = OmegaConf.load(CONF / "ranker" / "lambdarank.yaml")
    if data is not None and (CONF / "ranker" / "data" / f"{data}.yaml").is_file():
        ranker = OmegaConf.merge(ranker, OmegaConf.load(CONF / "ranker" / "data" / f"{data}.yaml"))
    return {"candidates": OmegaConf.to_container(cand, resolve=True),
            "ranker": OmegaConf.to_container(ranker, resolve=True)}


def run_pipeline(pipe: TwoStage, train: Period, test: Period, label: str) -> None:
    """Fit on ``train``, then candidates + features + ranking for every user of ``test``, in
    batches of ``candidates.batch_users`` users (as the pipeline ranks)."""
    with PeakRSS() as peak:
        start = time.perf_counter()
        ranker = pipe.fit([train])
        fit_s = time.perf_counter() - start
        cand_s = feat_s = rank_s = 0.0
        pairs, filled = 0, 0
        step = pipe.cfg.batch_users
        for s in range(0, len(test.users), step):
            part = Period(test.history, test.users[s : s + step], test.exclude)
            start = time.perf_counter()
            lists = pipe.candidates(part)
            cand_s += time.perf_counter() - start
            start = time.perf_counter()
            table = pipe.score_table(part, lists)
            feat_s += time.perf_counter() - start
            start = time.perf_counter()
            top = pipe.rank(ranker, part, 12, table)
            rank_s += time.perf_counter() - start
            pairs += len(table.cands)
            filled += int((top[:, 0] >= 0).sum())
    n = len(test.users)
    total = cand_s + feat_s + rank_s
    print(f"{label}: {n:,} users, {pairs:,} candidate pairs, {len(table.features.names)} "
          f"features; ranker fit on {len(train.users):,} labelled users in {fit_s:.1f}s")
    print(f"  candidates {cand_s:7.2f}s  features {feat_s:7.2f}s  ranking {rank_s:7.2f}s  -> "
          f"{n / total:,.0f} users/s end to end; peak RSS {peak.peak:,.0f} MiB "
          f"(users with a top-12: {filled / n:.3f})")


def hm_section(path: Path) -> None:
    from recsys.data import load_dataset

    if not (path / "manifest.json").is_file():
        print(f"1. H&M: skipped (no processed dataset at {path}; run recsys-data data=hm)")
        return
    ds = load_dataset(path)
    cfg = ranking_config(**config("hm"))
    pipe = TwoStage(cfg, build_catalog(cfg, ds.items, ds.users), popularity_segments(cfg, ds.users))
    n_users, n_items = len(ds.users), len(ds.items)
    train_rows = ds.train[ds.train["positive"].astype(bool)]
    val_rows = ds.val[ds.val["positive"].astype(bool)]
    train_hist = history_as_of(train_rows, n_users, n_items)
    labels = matrix(val_rows, n_users, n_items)
    train = Period(train_hist, np.unique(val_rows["user_idx"].to_numpy()), None, labels)
    test_hist = history_as_of(pd.concat([train_rows, val_rows]), n_users, n_items)
    print("1. H&M (every user ranked as of the test start)")
    run_pipeline(pipe, train, Period(test_hist, np.arange(n_users)), "   hm")


def matrix(frame: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(frame)), (frame["user_idx"].to_numpy(np.int64),
                                                 frame["item_idx"].to_numpy(np.int64))),
                         shape=(n_users, n_items))


def random_world(n_users: int, n_items: int, seed: int = 0
                 ) -> tuple[pd.DataFrame, Catalog, pd.DataFrame]:
    """Purchases, the catalogue (product groups of 5, a price, a colour per item) and weighted
    views / clicks (about 3 per purchase) that the taste features read."""
    rng = np.random.default_rng(seed)
    per_user = rng.poisson(20, n_users) + 1
    users = np.repeat(np.arange(n_users), per_user)
    weights = 1.0 / (np.arange(n_items) + 10.0)
    items = rng.choice(n_items, size=len(users), p=weights / weights.sum())
    # a user's repeat purchases: a quarter of the rows repeat an earlier item of the same user
    repeat = np.flatnonzero(rng.random(len(users)) < 0.25)
    repeat = repeat[(repeat > 0) & (users[np.maximum(repeat - 1, 0)] == users[repeat])]
    items[repeat] = items[repeat - 1]
    days = rng.integers(0, 120, len(users))
    frame = pd.DataFrame({"user_idx": users, "item_idx": items,
                          "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, "D")})
    catalog = Catalog(groups=np.arange(n_items) // 5, price=rng.lognormal(3.0, 0.5, n_items),
                      user_values=rng.integers(16, 80, (n_users, 1)).astype(float),
                      user_names=("age",), item_values=np.empty((n_items, 0)), item_names=(),
                      affinity={"colour": rng.integers(-1, 12, n_items)})
    viewer = np.repeat(np.arange(n_users), rng.poisson(60, n_users))
    events = pd.DataFrame({"user_idx": viewer,
                           "item_idx": rng.choice(n_items, len(viewer), p=weights / weights.sum()),
                           "timestamp": pd.Timestamp("2024-01-01")
                           + pd.to_timedelta(rng.integers(0, 120, len(viewer)), "D"),
                           "weight": rng.choice([1.0, 2.0], len(viewer))})
    return frame, catalog, events


def world_section(n_users: int, n_items: int) -> tuple[History, TwoStage]:
    frame, catalog, events = random_world(n_users, n_items)
    cfg: RankingConfig = ranking_config(**config(None))
    pipe = TwoStage(cfg, catalog)
    cut = pd.Timestamp("2024-04-23")  # the last week labels the training period
    train_hist = replace(history_as_of(frame, n_users, n_items, cut),
                         events=events_before(events, cut))
    label_rows = frame[frame["timestamp"] >= cut]
    labelled = np.unique(label_rows["user_idx"].to_numpy())
    fit_users = labelled[: max(1, min(len(labelled), 20000))]
    train = Period(train_hist, fit_users, None, matrix(label_rows, n_users, n_items))
    test_hist = replace(history_as_of(frame, n_users, n_items), events=events)
    print(f"2. random world: {n_users:,} users x {n_items:,} items, {len(frame):,} purchases, "
          f"{len(events):,} weighted views and clicks")
    run_pipeline(pipe, train, Period(test_hist, np.arange(n_users)), "   world")
    return test_hist, pipe


@dataclass
class LoopIndex:
    """What the per-user loop reads, built in one plain pass over the history: its rows per
    user, and per item the purchase count, buyers, youngest / oldest age and sorted ages (the
    same things :func:`history_stats` computes with arrays)."""

    by_user: dict[int, list[int]] = field(default_factory=dict)
    item_count: dict[int, int] = field(default_factory=dict)
    item_buyers: dict[int, set[int]] = field(default_factory=dict)
    item_young: dict[int, float] = field(default_factory=dict)
    item_old: dict[int, float] = field(default_factory=dict)
    item_ages: dict[int, list[float]] = field(default_factory=dict)
    together: dict[int, dict[int, int]] = field(default_factory=dict)  # same-basket counts
    events: dict[int, list[tuple[int, float]]] = field(default_factory=dict)  # (item, weight)


def loop_index(hist: History) -> LoopIndex:
    index = LoopIndex()
    users = hist.frame["user_idx"].to_numpy().tolist()
    items = hist.frame["item_idx"].to_numpy().tolist()
    baskets: dict[tuple[int, int], set[int]] = {}
    for r, (u, i, a) in enumerate(zip(users, items, hist.age_days.tolist(), strict=True)):
        index.by_user.setdefault(u, []).append(r)
        index.item_count[i] = index.item_count.get(i, 0) + 1
        index.item_buyers.setdefault(i, set()).add(u)
        index.item_young[i] = min(index.item_young.get(i, math.inf), a)
        index.item_old[i] = max(index.item_old.get(i, -math.inf), a)
        index.item_ages.setdefault(i, []).append(a)
        baskets.setdefault((u, math.floor(a)), set()).add(i)
    if hist.events is not None:
        for u, i, w in zip(hist.events["user_idx"].tolist(), hist.events["item_idx"].tolist(),
                           hist.events["weight"].tolist(), strict=True):
            index.events.setdefault(u, []).append((i, w))
    for ages in index.item_ages.values():
        ages.sort()
    for basket in baskets.values():  # one user's purchases of one day
        for i in basket:
            row = index.together.setdefault(i, {})
            for j in basket:
                if j != i:
                    row[j] = row.get(j, 0) + 1
    return index


def loop_features(hist: History, catalog: Catalog, cfg: RankingConfig, index: LoopIndex,
                  cands: CandidateSet) -> dict[str, np.ndarray]:
    """Every feature of :func:`build_features` (for a catalogue without images), one user at a
    time from plain dicts and lists."""
    windows, half_lives, basket_hl = cfg.windows, cfg.half_lives, cfg.basket_half_life
    assert catalog.groups is not None and catalog.price is not None and catalog.images is None
    n = len(cands)
    out: dict[str, np.ndarray] = {}
    for name in cands.scores:  # the sources' own scores and ranks, copied pair by pair
        out[f"{name}_score"], out[f"{name}_rank"] = np.empty(n), np.empty(n)
    names = ["n_sources", "ui_count", "ui_days_since", *(f"ui_decayed_{h:g}d" for h in half_lives),
             "ui_days_before_last", "ug_count", "ug_days_since",
             *(f"ug_decayed_{h:g}d" for h in half_lives), "ug_days_before_last",
             *(["basket_score"] if basket_hl is not None else []),
             *(f"aff_{c}" for c in catalog.affinity),
             *((*(f"taste_{c}" for c in catalog.affinity), "taste_log_sum")
               if hist.events is not None and catalog.affinity else ()),
             "item_count", "item_repeat_share", "item_days_since_last", "item_days_since_first",
             *(f"item_pop_{w:g}d{s}" for w in windows for s in ("", "_at_user")), "item_trend",
             "user_count", "user_items", "user_repeat_share", "user_days_since_last",
             "user_days_since_first", "user_days", "user_gap_days", "item_price", "price_vs_user",
             *(f"user_{c}" for c in catalog.user_names), *(f"item_{c}" for c in catalog.item_names)]
    out.update({name: np.empty(n) for name in names})
    i_all, age_all = hist.frame["item_idx"].to_numpy().tolist(), hist.age_days.tolist()
    groups, price = catalog.groups.tolist(), catalog.price.tolist()
    affinity = {c: code.tolist() for c, code in catalog.affinity.items()}
    sources = [(name, cands.scores[name].tolist(), cands.ranks[name].tolist())
               for name in cands.scores]
    rows, items = cands.rows.tolist(), cands.items.tolist()
    p = 0
    for pos, u in enumerate(cands.users.tolist()):
        mine = index.by_user.get(int(u), [])
        ui: dict[int, tuple[int, float]] = {}
        ug: dict[int, tuple[int, float]] = {}
        aff: dict[str, dict[int, int]] = {c: {} for c in affinity}
        for r in mine:
            i, a = i_all[r], age_all[r]
            c, y = ui.get(i, (0, math.inf))
            ui[i] = (c + 1, min(y, a))
            if groups[i] >= 0:
                c, y = ug.get(groups[i], (0, math.inf))
                ug[groups[i]] = (c + 1, min(y, a))
            for col, code in affinity.items():
                aff[col][code[i]] = aff[col].get(code[i], 0) + 1
        taste: dict[str, dict[int, float]] = {c: {} for c in affinity}  # weighted events
        seen = index.events.get(int(u), [])
        total = sum(w for _, w in seen)
        for i, w in seen:
            for col, code in affinity.items():
                if code[i] >= 0:
                    taste[col][code[i]] = taste[col].get(code[i], 0.0) + w
        known = [price[i_all[r]] for r in mine if not math.isnan(price[i_all[r]])]
        median = statistics.median(known) if known else math.nan
        last = min((age_all[r] for r in mine), default=math.nan)
        first = max((age_all[r] for r in mine), default=math.nan)
        days = len({math.floor(age_all[r]) for r in mine})
        ui_dec: dict[float, dict[int, float]] = {h: {} for h in half_lives}  # decayed from the
        ug_dec: dict[float, dict[int, float]] = {h: {} for h in half_lives}  # user's last purchase
        weight: dict[int, float] = {}  # the basket score's weights
        for r in mine:
            i, a = i_all[r], age_all[r]
            for h in half_lives:
                ui_dec[h][i] = ui_dec[h].get(i, 0.0) + 0.5 ** ((a - last) / h)
                if groups[i] >= 0:
                    ug_dec[h][groups[i]] = ug_dec[h].get(groups[i], 0.0) + 0.5 ** ((a - last) / h)
            if basket_hl is not None:
                weight[i] = weight.get(i, 0.0) + 0.5 ** ((a - last) / basket_hl)
        basket: dict[int, float] = {}
        for j, w in weight.items():
            for i, c in index.together.get(j, {}).items():
                basket[i] = basket.get(i, 0.0) + w * c
        while p < len(rows) and rows[p] == pos:
            i = items[p]
            for name, score, rank in sources:
                out[f"{name}_score"][p], out[f"{name}_rank"][p] = score[p], rank[p]
            out["n_sources"][p] = sum(not math.isnan(rank[p]) for _, _, rank in sources)
            c, y = ui.get(i, (0, math.nan))
            out["ui_count"][p], out["ui_days_since"][p] = c, y
            out["ui_days_before_last"][p] = y - last
            c, y = ug.get(groups[i], (0, math.nan)) if groups[i] >= 0 else (0, math.nan)
            out["ug_count"][p], out["ug_days_since"][p] = c, y
            out["ug_days_before_last"][p] = y - last
            for h in half_lives:
                out[f"ui_decayed_{h:g}d"][p] = ui_dec[h].get(i, 0.0)
                out[f"ug_decayed_{h:g}d"][p] = ug_dec[h].get(groups[i], 0.0)
            if basket_hl is not None:
                out["basket_score"][p] = basket.get(i, 0.0)
            for col, code in affinity.items():
                out[f"aff_{col}"][p] = (aff[col].get(code[i], 0) if code[i] >= 0 else 0) \
                    / max(len(mine), 1)
            if hist.events is not None and affinity:
                log_sum = 0.0
                for col, code in affinity.items():
                    share = (taste[col].get(code[i], 0.0) if code[i] >= 0 else 0.0) \
                        / max(total, 1e-12)
                    out[f"taste_{col}"][p] = share
                    log_sum += math.log(share + cfg.event_smoothing)
                out["taste_log_sum"][p] = log_sum
            count = index.item_count.get(i, 0)
            out["item_count"][p] = count
            out["item_repeat_share"][p] = 1.0 - len(index.item_buyers.get(i, ())) / max(count, 1)
            out["item_days_since_last"][p] = index.item_young.get(i, math.nan)
            out["item_days_since_first"][p] = index.item_old.get(i, math.nan)
            ages = index.item_ages.get(i, [])
            for w in windows:  # purchases within w days of the cut-off; and in the whole days
                # [d, d + w) before the user's last purchase day d
                out[f"item_pop_{w:g}d"][p] = bisect.bisect_right(ages, w) / w
                out[f"item_pop_{w:g}d_at_user"][p] = math.nan if math.isnan(last) else (
                    bisect.bisect_left(ages, math.floor(last) + math.ceil(w))
                    - bisect.bisect_left(ages, math.floor(last))) / w
            out["item_trend"][p] = (out[f"item_pop_{windows[0]:g}d"][p] + 1e-3) \
                / (out[f"item_pop_{windows[-1]:g}d"][p] + 1e-3)
            out["user_count"][p] = len(mine)
            distinct = len(ui)
            out["user_items"][p] = distinct
            out["user_repeat_share"][p] = 1.0 - distinct / max(len(mine), 1)
            out["user_days_since_last"][p], out["user_days_since_first"][p] = last, first
            out["user_days"][p] = days
            out["user_gap_days"][p] = (first - last) / (days - 1) if days >= 2 else math.nan
            out["item_price"][p] = price[i]
            out["price_vs_user"][p] = price[i] / median if median else math.inf
            for j, col in enumerate(catalog.user_names):
                out[f"user_{col}"][p] = catalog.user_values[u, j]
            for j, col in enumerate(catalog.item_names):
                out[f"item_{col}"][p] = catalog.item_values[i, j]
            p += 1
    return out


def cpu_best_of(n: int, fn: Callable[[], T]) -> tuple[T, float, float]:
    """Result of the last of ``n`` runs, the best wall and the best process CPU seconds."""
    wall, cpu, out = math.inf, math.inf, None
    for _ in range(n):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    assert out is not None
    return out, wall, cpu


def feature_section(hist: History, pipe: TwoStage, n_ref: int) -> None:
    users = np.random.default_rng(1).choice(hist.n_users, n_ref, replace=False)
    users.sort()
    cands = merge(users, hist.n_items, pipe.candidates(Period(hist, users)))
    cfg = pipe.cfg
    stats, once_s = timed(lambda: history_stats(hist, pipe.catalog, cfg.windows,
                                                half_lives=cfg.half_lives,
                                                basket_half_life=cfg.basket_half_life))
    index, index_s = timed(loop_index, hist)
    feats, vec_s, vec_cpu = cpu_best_of(2, lambda: pipe.features(cands, stats))
    ref, loop_s, loop_cpu = cpu_best_of(2, lambda: loop_features(hist, pipe.catalog, cfg,
                                                                 index, cands))
    missing = [name for name in feats.names if name not in ref]
    worst = 0.0
    for name in ref:
        mine = feats.values[:, feats.names.index(name)].astype(np.float64)
        theirs = ref[name].astype(np.float32).astype(np.float64)
        theirs[~np.isfinite(theirs)] = np.nan
        same = np.isclose(mine, theirs, rtol=1e-6, equal_nan=True)
        worst = max(worst, float((~same).mean()))
    print(f"3. features of one batch of {n_ref} users ({len(cands):,} pairs), the history read "
          f"once beforehand by each side (vectorised stats {once_s:.2f}s, the loop's dicts "
          f"{index_s:.2f}s), best of 2 runs each:")
    print(f"   vectorised {vec_s:.3f}s vs per-user loop {loop_s:.2f}s, the same {len(ref)} "
          f"features{f' (not in the loop: {missing})' if missing else ''} -> "
          f"{loop_s / vec_s:.1f}x wall; CPU {vec_cpu:.3f}s vs {loop_cpu:.2f}s -> "
          f"{loop_cpu / vec_cpu:.1f}x (one thread each: CPU time is what a loaded machine does "
          f"not inflate); values differ on {worst:.2%} of pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hm", type=Path, default=ROOT / "outputs" / "data" / "hm")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--ref-users", type=int, default=2048)
    parser.add_argument("--only-features", action="store_true",
                        help="build the world and run section 3 only")
    args = parser.parse_args()
    print(f"start RSS {rss_mib():,.0f} MiB")
    if args.only_features:
        frame, catalog, events = random_world(args.users, args.items)
        hist = replace(history_as_of(frame, args.users, args.items), events=events)
        feature_section(hist, TwoStage(ranking_config(**config(None)), catalog), args.ref_users)
        return
    hm_section(args.hm)
    hist, pipe = world_section(args.users, args.items)
    feature_section(hist, pipe, args.ref_users)


if __name__ == "__main__":
    main()
