"""How far ranking can go on the synthetic world's test week: an oracle that knows the world's
latent variables (tastes, loyalty, release days, complements, every repeat chain of the history)
ranks each user's items by their probability of being bought in the test period, under the same
data, history and metric code as ``recsys-evaluate`` and the repurchase baseline.

The probability has two parts. Session purchases (with their complements and same-week repeats)
are counted over ``--replications`` fresh draws of the test week's sessions, candidates and funnel
from the generator itself. Repeats of purchases before the test come from the history's own
repeat chains (rebuilt from the world's seed and checked against its interactions): a chain whose
last event was ``a`` days before the test start, at a user with repeat probability ``p``, repeats
in the test week with probability ``p (S(a) - S(a + 7)) / (1 - p + p S(a))``, where ``S`` is
the survival of the generator's repeat gap. No ranking method can expect more than this oracle,
up to the Monte Carlo error of the session part. The last row replaces each user's session part
by the mean over users (popularity, season and novelty kept, tastes dropped): what knowing the
users' tastes is worth.

    python scripts/synthetic_ceiling.py [--data outputs/data/synthetic] [--replications 3000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.complements import complement_items
from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.interactions import PURCHASE, EventLog, _quantities, session_events
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.sampling import categorical_rows
from recsys.data.synthetic.sessions import DAY_S, CandidateSampler, Sessions, make_sessions
from recsys.data.synthetic.utility import UtilityModel, paid_prices
from recsys.data.synthetic.world import _EVENTS, _PAIRS, _rng
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.methods import build_methods
from recsys.evaluation.metrics import ranking_metrics
from recsys.marketing.world import load_world
from recsys.retrieval.topk import select_top_k

ROOT = Path(__file__).resolve().parents[1]
K = 12


def repeat_probability(w: WorldConfig, pop: Population) -> np.ndarray:
    """Per user: the chance that a purchase is repeated, per round (as the generator draws it)."""
    u, f = w.users, w.funnel
    mean_loyalty = u.loyalty_a / (u.loyalty_a + u.loyalty_b)
    return np.clip(f.repeat_rate * pop.loyalty / mean_loyalty, 0.0, 0.95)


def repeat_chains(w: WorldConfig, rng: np.random.Generator, pop: Population, cat: Catalogue,
                  log: EventLog) -> pd.DataFrame:
    """Every purchase event of the generator's repeat chains: (chain, round, user, item, time_s),
    round 0 being the session purchase; the random draws of ``interactions._repeats``."""
    src = log.take(np.flatnonzero(log.event == PURCHASE))
    chain = np.arange(len(src.user))
    p_user = repeat_probability(w, pop)
    rows = [pd.DataFrame({"chain": chain, "round": 0, "user": src.user, "item": src.item,
                          "time_s": src.time_s})]
    for rnd in range(1, w.funnel.max_repeats + 1):
        keep = np.flatnonzero(rng.random(len(src.user)) < p_user[src.user])
        src, chain = src.take(keep), chain[keep]
        n = len(src.user)
        day = (src.time_s + (0.5 + rng.exponential(w.funnel.repeat_gap_days, n)) * DAY_S) // DAY_S
        time_s = day * DAY_S + pop.active_hour[src.user] * 3600 + rng.integers(0, 3600, n)
        time_s = np.where(time_s <= src.time_s, time_s + DAY_S, time_s).astype(np.int64)
        _quantities(rng, w.funnel.multi_quantity_rate, (n,))  # the generator's remaining draws
        paid_prices(w, rng, cat, src.item)
        categorical_rows(rng, pop.channel_mix[src.user])
        src = EventLog(src.user, src.item, time_s, src.event, src.quantity, src.price, src.channel)
        inside = np.flatnonzero(src.time_s < w.n_days * DAY_S)
        src, chain = src.take(inside), chain[inside]
        rows.append(pd.DataFrame({"chain": chain, "round": rnd, "user": src.user,
                                  "item": src.item, "time_s": src.time_s}))
    return pd.concat(rows, ignore_index=True)


def history_repeats(w: WorldConfig, pop: Population, chains: pd.DataFrame, start_s: int,
                    end_s: int) -> pd.DataFrame:
    """Per (user, item): the chance that a chain begun before ``start_s`` repeats in
    [start_s, end_s), given that it showed no event from its last one up to ``start_s``."""
    before = chains[chains["time_s"] < start_s]
    last = before.sort_values("time_s").groupby("chain").tail(1)
    last = last[last["round"] < w.funnel.max_repeats]
    p = repeat_probability(w, pop)[last["user"].to_numpy()]
    gap = w.funnel.repeat_gap_days
    a = (start_s - last["time_s"].to_numpy()) / DAY_S
    b = (end_s - last["time_s"].to_numpy()) / DAY_S

    def survival(x: np.ndarray) -> np.ndarray:
        return np.exp(-np.maximum(x - 0.5, 0.0) / gap)

    prob = p * (survival(a) - survival(b)) / (1.0 - p + p * survival(a))
    out = pd.DataFrame({"user": last["user"].to_numpy(), "item": last["item"].to_numpy(),
                        "miss": 1.0 - prob})
    return out.groupby(["user", "item"], as_index=False)["miss"].prod()


def session_part(w: WorldConfig, pop: Population, cat: Catalogue, partner: np.ndarray,
                 start: np.datetime64, start_s: int, end_s: int, replications: int,
                 seed: int) -> np.ndarray:
    """[n_users, n_items]: expected purchases in [start_s, end_s) from fresh draws of the
    period's sessions, their complements and their repeats inside the period."""
    rng = np.random.default_rng(seed)
    sampler = CandidateSampler(w, cat)
    model = UtilityModel.build(w, pop, cat, start)
    p_user = repeat_probability(w, pop)
    f = w.funnel
    total = np.zeros((w.n_users, w.n_items))
    for _ in range(replications):
        sessions = make_sessions(w, rng, pop, start)
        keep = np.flatnonzero(sessions.time_s >= start_s)
        sessions = Sessions(*(a[keep] for a in (sessions.user, sessions.day, sessions.time_s,
                                                sessions.channel, sessions.intent)))
        log = session_events(w, rng, pop, cat, sessions, sampler, model)
        buy = (log.event == PURCHASE) & (log.time_s < end_s)
        user, item, t = log.user[buy], log.item[buy], log.time_s[buy]
        np.add.at(total, (user, item), 1.0)
        comp = partner[item]
        ok = (t >= cat.release_day[comp] * DAY_S) & ~(pop.minor[user] & cat.age_restricted[comp])
        np.add.at(total, (user[ok], comp[ok]), f.complement_rate)
        left = (end_s - t) / DAY_S
        np.add.at(total, (user, item), p_user[user]
                  * (1.0 - np.exp(-np.maximum(left - 0.5, 0.0) / f.repeat_gap_days)))
    return total / replications


def top_k_dense(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` item indices per row, ties to the lower index (the evaluator's rule)."""
    return select_top_k(torch.from_numpy(scores), k)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "outputs" / "data" / "synthetic")
    parser.add_argument("--raw", type=Path, default=ROOT / "outputs" / "raw" / "synthetic")
    parser.add_argument("--replications", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the session draws")
    args = parser.parse_args()
    conf = ROOT / "recsys" / "conf"
    generator = as_dict(OmegaConf.load(conf / "data" / "synthetic.yaml").generator, "generator")
    privacy = OmegaConf.load(conf / "preprocess" / "default.yaml").privacy
    world = load_world(args.raw, generator, as_dict(privacy, "preprocess.privacy"))
    w, start, cat, pop = world.config, world.start, world.cat, world.pop
    partner = complement_items(w, _rng(w, _PAIRS), cat)
    rng = _rng(w, _EVENTS)
    sessions = make_sessions(w, rng, pop, start)
    log = session_events(w, rng, pop, cat, sessions, CandidateSampler(w, cat),
                         UtilityModel.build(w, pop, cat, start))
    chains = repeat_chains(w, rng, pop, cat, log)
    raw = pd.read_parquet(args.raw / "interactions.parquet")
    raw = raw[raw["event"] == "purchase"]
    rebuilt = pd.DataFrame({
        "user_id": pop.table["user_id"].astype(str).to_numpy()[chains["user"].to_numpy()],
        "item_id": cat.table["item_id"].astype(str).to_numpy()[chains["item"].to_numpy()],
        "timestamp": pd.Timestamp(start) + pd.to_timedelta(chains["time_s"].to_numpy(), unit="s")})
    found = len(rebuilt.merge(raw[["user_id", "item_id", "timestamp"]].astype(
        {"user_id": str, "item_id": str}).drop_duplicates(), how="inner"))
    print(f"rebuilt {len(chains)} session purchases and repeats, {found} of them in the "
          f"world's {len(raw)} purchases (the others are complements)")

    ds = load_dataset(args.data)
    data = prepare_eval_data(ds, "test")
    test_start = pd.Timestamp(ds.test["timestamp"].min()).floor("D")
    start_s = int((test_start - pd.Timestamp(start)).total_seconds())
    end_s = w.n_days * DAY_S
    repeats = history_repeats(w, pop, chains, start_s, end_s)
    session = session_part(w, pop, cat, partner, start, start_s, end_s, args.replications, args.seed)
    p_hist = np.zeros((w.n_users, w.n_items))
    p_hist[repeats["user"], repeats["item"]] = 1.0 - repeats["miss"].to_numpy()
    p_session = 1.0 - np.exp(-session)  # expected count -> P(at least one), Poisson
    oracle = 1.0 - (1.0 - p_hist) * (1.0 - p_session)

    users = ds.users.set_index("user_id")["user_idx"]
    items = ds.items.set_index("item_id")["item_idx"]
    u_map = users.reindex(world.user_ids).to_numpy()
    i_map = items.reindex(world.item_ids).to_numpy()
    u_ok, i_ok = ~np.isnan(u_map), ~np.isnan(i_map)

    def processed(score: np.ndarray) -> np.ndarray:
        out = np.full((data.n_users, data.n_items), -np.inf)
        out[np.ix_(u_map[u_ok].astype(np.int64), i_map[i_ok].astype(np.int64))] = \
            score[np.ix_(u_ok, i_ok)]
        return out[data.users]

    methods = OmegaConf.load(ROOT / "recsys" / "conf" / "eval" / "default.yaml").methods
    repurchase = build_methods({"repurchase": as_dict(methods.repurchase, "eval.methods.repurchase")},
                               data, batch_size=1024, seed=0, threads=1)["repurchase"]
    rows = {"repurchase baseline (conf/eval)": repurchase.top_k(data.users, K),
            "oracle: history repeats, then sessions": top_k_dense(
                processed(p_hist + 1e-6 * p_session), K),
            "oracle: sessions only": top_k_dense(processed(p_session), K),
            "oracle: both": top_k_dense(processed(oracle), K),
            "oracle: both, sessions without tastes": top_k_dense(processed(
                1.0 - (1.0 - p_hist) * (1.0 - p_session.mean(axis=0, keepdims=True))), K)}
    print(f"{len(data.users)} test users, {data.user_truth.nnz} test purchases; session part "
          f"from {args.replications} draws of the test period")
    print(f"{'method':42s} {'Recall@12':>10s} {'NDCG@12':>9s} {'MAP@12':>8s}")
    for name, top in rows.items():
        m = ranking_metrics(top, data.user_truth, [K])
        print(f"{name:42s} {m[f'recall@{K}']:10.4f} {m[f'ndcg@{K}']:9.4f} {m[f'map@{K}']:8.4f}")


if __name__ == "__main__":
    main()
