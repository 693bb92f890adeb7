"""Taste from every interaction type (candidates.features.events): the taste features are the
user's weighted event shares, the taste source ranks by them, earlier training periods never
read events of their own label days, and bad settings are refused naming their key."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsys.data import load_dataset
from recsys.errors import ConfigError, DataError, ModelError
from recsys.evaluation import ranked
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.ranked import training_periods
from recsys.evaluation.toy import make_toy_dataset
from recsys.ranking.candidates import Candidates, merge
from recsys.ranking.config import ranking_config
from recsys.ranking.features import Catalog, build_features
from recsys.ranking.history import events_before, history_as_of, weighted_events
from recsys.ranking.sources import TasteSource

T0 = pd.Timestamp("2024-03-01")


def frame(rows: list[tuple[int, int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame({"user_idx": [r[0] for r in rows], "item_idx": [r[1] for r in rows],
                         "timestamp": [T0 + pd.Timedelta(days=r[2]) for r in rows],
                         "event": [r[3] for r in rows]})


EVENTS = frame([(0, 0, 1, "purchase"), (0, 1, 2, "view"), (0, 2, 3, "view"), (0, 3, 3, "click"),
                (1, 1, 2, "view"), (1, 4, 4, "cart"), (0, 5, 9, "view")])
COLOUR = np.array([0, 1, 1, 2, 2, -1])  # item -> colour code (item 5: none)
WEIGHTS = {"view": 1.0, "click": 2.0, "cart": 3.0}


def test_weighted_events_keep_the_weighted_types_before_each_cut_off() -> None:
    got = weighted_events(EVENTS, WEIGHTS, "t.parquet")
    assert got["weight"].tolist() == [1.0, 1.0, 2.0, 1.0, 3.0, 1.0]  # the purchase has none
    early = events_before(got, T0 + pd.Timedelta(days=9), pd.Series(
        {0: T0 + pd.Timedelta(days=3)}))  # user 0's own cut-off, before day 3
    assert early[["user_idx", "item_idx"]].values.tolist() == [[0, 1], [1, 1], [1, 4]]
    with pytest.raises(DataError, match="event") as err:
        weighted_events(EVENTS.drop(columns="event"), WEIGHTS, "t.parquet")
    assert err.value.file == "t.parquet"


def test_taste_features_are_the_users_weighted_event_shares() -> None:
    purchases = EVENTS[EVENTS["event"] == "purchase"]
    events = weighted_events(EVENTS, WEIGHTS, "t")
    hist = replace(history_as_of(purchases, 2, 6), events=events)
    catalog = Catalog(groups=None, price=None, user_values=np.zeros((2, 0)), user_names=(),
                      item_values=np.zeros((6, 0)), item_names=(), affinity={"colour": COLOUR})
    items = np.array([0, 1, 3, 5])
    cands = merge(np.array([0]), 6, {"s": Candidates(np.zeros(4, np.int64), items,
                                                      np.ones(4), np.arange(4))})
    feats = build_features(cands, hist, catalog, (7.0,), taste_smoothing=0.1)
    col = dict(zip(feats.names, feats.values.T, strict=True))
    order = cands.items  # user 0 weighs 5: colour 1 twice (2), colour 2 once by a click (2)
    share = {0: 0.0, 1: 2 / 5, 3: 2 / 5, 5: 0.0}
    np.testing.assert_allclose(col["taste_colour"], [share[i] for i in order], rtol=1e-6)
    np.testing.assert_allclose(col["taste_log_sum"], np.log([share[i] + 0.1 for i in order]),
                               rtol=1e-6)
    source = TasteSource(hist, {"colour": COLOUR}, None, 0.1, events=True, popularity_weight=1.0)
    dense = source.scores(np.array([0]))[0]  # every item: taste + log(1 + purchases)
    np.testing.assert_allclose(dense, np.log([0.1, 0.5, 0.5, 0.5, 0.5, 0.1])
                               + np.log1p([1, 0, 0, 0, 0, 0]), rtol=1e-6)
    with pytest.raises(ModelError, match=r"candidates\.features\.events"):
        TasteSource(replace(hist, events=None), {"colour": COLOUR}, None, 0.1, events=True)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = make_toy_dataset(n_users=60, n_items=40).write(tmp_path_factory.mktemp("d") / "toy")
    return prepare_eval_data(load_dataset(root), "val")


@pytest.mark.parametrize("per_user", [False, True])
def test_each_training_period_reads_events_only_before_its_labels(
        toy: Any, per_user: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Earlier periods are the window before the labels (a temporal split) or, per user, the
    last purchase day (a leave-last-day split, as on H&M): events stop before either."""
    if per_user:
        monkeypatch.setattr(ranked, "label_window_days", lambda *_: None)
    periods = training_periods(toy, False, 3, weights={"view": 1.0})
    assert len(periods) > 2 and all(p.history.events is not None for p in periods)
    keys = ["user_idx", "item_idx", "timestamp"]
    for before, period in itertools.pairwise(periods):  # each held out of the one before
        rows = before.history.frame.merge(period.history.frame, on=keys, how="left",
                                          indicator=True)
        held = rows[rows["_merge"] == "left_only"]  # this period's label rows
        day = held.groupby("user_idx")["timestamp"].min().dt.normalize()
        events = period.history.events
        assert events is not None and len(held) and len(events)
        limit = events["user_idx"].map(day)
        assert (limit.isna() | (events["timestamp"] < limit)).all()
        assert (events["timestamp"] < period.history.cutoff).all()
        assert set(day.index) == set(period.users)


BASE = {"budget": 5, "batch_users": 10, "recall_at": [5],
        "sources": {"rep": {"kind": "repurchase"}},
        "features": {"popularity_windows": [7], "affinity_columns": ["colour"],
                     "events": {"weights": {"view": 1}, "smoothing": 0.2}}}
RANKER = {"params": {}, "num_boost_round": 1, "seed": 0, "threads": 1}


@pytest.mark.parametrize(("change", "key"), [
    ({"events": {"weights": {"view": -1}, "smoothing": 0.2}}, "events.weights.view"),
    ({"events": {"weights": {"view": 0}, "smoothing": 0.2}}, "events.weights"),
    ({"events": {"weights": {}, "smoothing": 0.2}}, "events.weights"),
    ({"events": {"weights": {"view": 1}, "smoothing": 0}}, "events.smoothing"),
    ({"affinity_columns": []}, "events")])
def test_bad_event_settings_are_refused_naming_their_key(change: dict[str, Any], key: str
                                                         ) -> None:
    cand = {**BASE, "features": {**BASE["features"], **change}}
    with pytest.raises(ConfigError, match=rf"candidates\.features\.{key}"):
        ranking_config(cand, RANKER)
    assert ranking_config(BASE, RANKER).event_weights == {"view": 1.0}


@pytest.mark.parametrize(("source", "events", "key"), [
    ({"kind": "taste", "smoothing": 0.1, "popularity_weight": 1}, None, "sources.own"),
    ({"kind": "taste", "smoothing": 0, "popularity_weight": 1}, BASE["features"]["events"],
     "sources.own.smoothing"),
    ({"kind": "taste", "smoothing": 0.1, "popularity_weight": -1}, BASE["features"]["events"],
     "sources.own.popularity_weight"),
    ({"kind": "taste", "smoothing": 0.1, "popularity_weight": 1, "window_days": 0},
     BASE["features"]["events"], "sources.own.window_days")])
def test_bad_taste_sources_are_refused_naming_their_key(source: dict[str, Any], events: Any,
                                                        key: str) -> None:
    cand = {**BASE, "sources": {"own": source}, "features": {**BASE["features"], "events": events}}
    with pytest.raises(ConfigError, match=rf"candidates\.{key}"):
        ranking_config(cand, RANKER)
