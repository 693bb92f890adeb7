"""scripts/synthetic_ceiling.py: the repeat chains it rebuilds are the generator's own events, and
the chance that a chain repeats in the test period behaves as the generator's draws imply."""

from __future__ import annotations

import numpy as np
import pandas as pd
from module_loading import load_module
from synthfixtures import tiny_config

from recsys.data.synthetic.interactions import PURCHASE, session_events, simulate
from recsys.data.synthetic.parse import parse_config
from recsys.data.synthetic.sessions import DAY_S, CandidateSampler, make_sessions
from recsys.data.synthetic.utility import UtilityModel
from recsys.data.synthetic.world import _EVENTS, _rng, latent_world

ceiling = load_module("synthetic_ceiling", "scripts/synthetic_ceiling.py")


def test_rebuilt_chains_are_the_generators_session_purchases_and_repeats() -> None:
    w = parse_config(tiny_config(n_users=150, n_items=60, images=False))
    start, cat, pop = latent_world(w)
    rng = _rng(w, _EVENTS)
    sessions = make_sessions(w, rng, pop, start)
    log = session_events(w, rng, pop, cat, sessions, CandidateSampler(w, cat),
                         UtilityModel.build(w, pop, cat, start))
    chains = ceiling.repeat_chains(w, rng, pop, cat, log)
    events = simulate(w, _rng(w, _EVENTS), pop, cat, start)
    bought = events[events["event"] == "purchase"]
    seconds = (bought["timestamp"] - pd.Timestamp(start)).dt.total_seconds().astype(np.int64)
    expected = sorted(zip(bought["user_id"], bought["item_id"], seconds, strict=True))
    rebuilt = sorted(zip(pop.table["user_id"].to_numpy()[chains["user"]],
                         cat.table["item_id"].to_numpy()[chains["item"]], chains["time_s"],
                         strict=True))
    assert (chains["round"] > 0).any() and len(chains) > 100
    assert rebuilt == expected
    assert (log.event == PURCHASE).sum() == (chains["round"] == 0).sum()


def test_history_repeats_follow_the_chain_state() -> None:
    w = parse_config(tiny_config(n_users=4, n_items=5, images=False))
    _, _, pop = latent_world(w)
    start_s, end_s = 100 * DAY_S, 107 * DAY_S
    last = w.funnel.max_repeats
    chains = pd.DataFrame({  # chain 0 bought 2 days before, chain 1 60 days before, chain 2 spent
        "chain": [0, 1, 2, 2, 2, 2], "round": [0, 0, 0, 1, 2, last],
        "user": [0, 0, 1, 1, 1, 1], "item": [0, 1, 2, 2, 2, 2],
        "time_s": [98 * DAY_S, 40 * DAY_S, 10 * DAY_S, 30 * DAY_S, 50 * DAY_S, 90 * DAY_S]})
    out = ceiling.history_repeats(w, pop, chains, start_s, end_s).set_index(["user", "item"])
    p = 1.0 - out["miss"]
    assert set(out.index) == {(0, 0), (0, 1)}  # a chain at its last round repeats no more
    assert 0.0 < p[(0, 1)] < p[(0, 0)] < ceiling.repeat_probability(w, pop)[0]
