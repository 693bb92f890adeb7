"""Recommender: known users, new users from features, unknown ids, k checks, candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from serving_fixtures import ToyModel, export_settings

from recsys.errors import ConfigError, DataError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.evaluator import rank_users
from recsys.evaluation.rankers import EmbeddingRanker
from recsys.evaluation.toy import ToyDataset
from recsys.retrieval.similarity import prepare
from recsys.serving import Recommender
from recsys.serving.recommender import PARTS


@pytest.fixture(scope="module")
def rec(bundle_dir: Path, toy_model: ToyModel) -> Recommender:
    return Recommender.load(bundle_dir)


def brute(query: np.ndarray, items: np.ndarray, k: int, drop: list[int]) -> list[int]:
    scores = prepare(items, "cosine") @ prepare(query[None], "cosine")[0]
    scores[drop] = -np.inf
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def purchased(ds: ToyDataset, user_idx: int) -> list[int]:
    frames = pd.concat([ds.train, ds.val, ds.test])
    pos = frames[frames["positive"] & (frames["user_idx"] == user_idx)]
    return sorted(set(pos["item_idx"]))


def test_known_user_matches_brute_force_and_excludes_purchases(
    rec: Recommender, toy_ds: ToyDataset, toy_model: ToyModel
) -> None:
    user = toy_ds.users.iloc[7]
    bought = purchased(toy_ds, 7)
    out = rec.recommend(user["user_id"], k=10)
    query = toy_model.user_embeddings(np.array([7]))[0]
    assert out["item_idx"].tolist() == brute(query, toy_model.items, 10, bought)
    assert out["rank"].tolist() == list(range(1, 11))
    assert (np.diff(out["score"].to_numpy()) <= 1e-6).all()
    assert {"item_id", "category", "colour", "price"} <= set(out.columns)
    assert out["item_id"].tolist() == toy_ds.items["item_id"].to_numpy()[out["item_idx"]].tolist()
    kept = rec.recommend(user["user_id"], k=10, exclude_purchased=False)
    assert kept["item_idx"].tolist() == brute(query, toy_model.items, 10, [])


def test_new_user_from_features_goes_through_the_tower(
    rec: Recommender, toy_ds: ToyDataset, toy_model: ToyModel
) -> None:
    first = toy_ds.items["item_id"].iloc[3]
    features = {"gender": "m", "region": "south", "age": 41, "history": [(first, 2.0)]}
    out = rec.recommend(features, k=6)
    users = toy_ds.users
    age = users.loc[users["user_id"].isin(toy_ds.train["user_id"]), "age"]  # scaler fitted on train
    with torch.no_grad():
        vec = toy_model.tower(
            torch.tensor([0]), torch.tensor([[2, 2]]),
            torch.tensor([[(41 - np.nanmean(age)) / np.nanstd(age)]], dtype=torch.float32),
            torch.tensor([[4, 0, 0, 0]]), torch.zeros((1, 4)), torch.zeros((1, 0, 0)),
            torch.zeros((1, 0), dtype=torch.bool)).numpy()[0]
    assert out["item_idx"].tolist() == brute(vec, toy_model.items, 6, [3])
    assert 3 not in out["item_idx"].tolist()


def test_bad_features_are_named(rec: Recommender) -> None:
    with pytest.raises(DataError, match="unknown user features \\['shoe_size'\\]"):
        rec.recommend({"shoe_size": 44}, k=3)
    with pytest.raises(DataError, match="column 'age'"):
        rec.recommend({"age": "old"}, k=3)
    with pytest.raises(DataError, match="unknown item id 'nope'"):
        rec.recommend({"history": ["nope"]}, k=3)


def test_encoder_recovers_the_datasets_standardisation(rec: Recommender,
                                                        toy_ds: ToyDataset) -> None:
    assert rec.encoder is not None
    users = toy_ds.users.dropna(subset=["age"]).head(10)
    records = [{"age": a, "gender": g, "region": r} for a, g, r in
               users[["age", "gender", "region"]].itertuples(index=False)]
    _, cat, num, hist, _, social, mask = rec.encoder.encode(records)
    np.testing.assert_allclose(num[:, 0].numpy(), users["age_z"].to_numpy(), atol=1e-5)
    np.testing.assert_array_equal(cat.numpy(), users[["gender_idx", "region_idx"]].to_numpy())
    assert hist.shape == (10, 4) and social.shape == (10, 0, 0) and not mask.any()
    assert rec.encoder.encode([{"age": None, "gender": "x"}])[2][0, 0] == 0.0


def test_unknown_user_by_flag(rec: Recommender, bundle_dir: Path) -> None:
    with pytest.raises(DataError, match="unknown user id 'ghost'"):
        rec.recommend("ghost", k=3)
    cold = rec.recommend("ghost", k=3, unknown_user="cold")
    assert len(cold) == 3
    assert cold["item_idx"].tolist() == rec.recommend({}, k=3)["item_idx"].tolist()
    lenient = Recommender.load(bundle_dir, unknown_user="cold")
    assert lenient.recommend("ghost", k=3)["item_idx"].tolist() == cold["item_idx"].tolist()
    with pytest.raises(ConfigError, match="unknown_user"):
        Recommender.load(bundle_dir, unknown_user="maybe")


@pytest.mark.parametrize("k", [0, -3, 81])
def test_k_out_of_range_is_a_clear_error(rec: Recommender, toy_ds: ToyDataset, k: int) -> None:
    with pytest.raises(ConfigError, match="between 1 and the catalogue size 80"):
        rec.recommend(toy_ds.users["user_id"].iloc[0], k=k)


def test_candidates_frame_for_the_rules_layer(rec: Recommender, toy_ds: ToyDataset) -> None:
    ids = toy_ds.users["user_id"].iloc[[2, 5]].tolist()
    frame = rec.candidates([*ids, "ghost"], k=4, unknown_user="cold")
    assert {"user_idx", "item_idx", "score", "rank", "behaviour_score", "image_score",
            "social_score", "base_score"} <= set(frame.columns)
    assert frame["user_idx"].tolist() == [2] * 4 + [5] * 4 + [-1] * 4
    assert frame["rank"].tolist() == [1, 2, 3, 4] * 3
    parts = frame[[f"{p}_score" for p in PARTS]].sum(axis=1)
    np.testing.assert_allclose(parts, frame["score"], rtol=1e-5, atol=1e-6)
    known, cold = frame[frame["user_idx"] >= 0], frame[frame["user_idx"] < 0]
    assert (known["behaviour_score"].abs() > 1e-6).all()
    assert (frame["image_score"].abs() > 1e-6).all()
    assert (frame["social_score"] == 0).all()  # the toy tower reads no social images
    assert (cold["behaviour_score"] == 0).all()  # an empty history contributes nothing


def test_contributions_are_shapley_values_of_the_ablated_vectors(
        rec: Recommender, toy_model: ToyModel) -> None:
    frame = rec.candidates([rec.user_ids[7]], k=3)
    u = np.array([7])
    full_u, no_b = toy_model.user_embeddings(u)[0], toy_model.ablated_user_embeddings(u, ["behaviour"])[0]
    norm = np.linalg.norm
    for row in frame.itertuples():
        i_full, i_bare = toy_model.items[row.item_idx], toy_model.items_without_image[row.item_idx]
        i_full, i_bare = i_full / norm(i_full), i_bare / norm(i_bare)
        v = {(b, i): float((full_u if b else no_b) @ (i_full if i else i_bare))
             for b in (0, 1) for i in (0, 1)}
        assert row.behaviour_score == pytest.approx(
            ((v[1, 0] - v[0, 0]) + (v[1, 1] - v[0, 1])) / 2, abs=1e-5)
        assert row.base_score == pytest.approx(v[0, 0], abs=1e-5)


def test_recommender_is_a_ranker_for_the_evaluator(rec: Recommender, toy_ds: ToyDataset,
                                                   toy_model: ToyModel) -> None:
    data = prepare_eval_data(toy_ds, "test")
    exact = EmbeddingRanker(toy_model.user_embeddings(np.arange(60)), toy_model.items, "cosine")
    np.testing.assert_array_equal(rank_users(rec, data, 10, True),
                                  rank_users(exact, data, 10, True))


def test_original_ids_are_found_by_pseudonym_and_reported_as_typed(bundle_dir: Path) -> None:
    from omegaconf import OmegaConf

    from recsys.data.privacy import pseudonymise
    from recsys.serving.stage import pseudonymiser

    privacy = OmegaConf.create({"pseudonymise": True, "key": "k", "hash_length": 12})
    hasher = pseudonymiser(privacy)
    assert hasher is not None and pseudonymiser(OmegaConf.create({"pseudonymise": False})) is None
    assert hasher("cust-1") == pseudonymise(pd.Series(["cust-1"]), "k", 12).iloc[0]
    stored = str(pd.read_parquet(bundle_dir / "users.parquet")["user_id"].iloc[2])
    rec = Recommender.load(bundle_dir, pseudonym=lambda uid: stored if uid == "cust-2" else hasher(uid))
    assert rec.recommend("cust-2", k=3)["item_idx"].tolist() == rec.recommend(stored, k=3)[
        "item_idx"].tolist()
    with pytest.raises(DataError) as err:
        rec.recommend("cust-404", k=3)
    assert "unknown user id 'cust-404'" in str(err.value) and hasher("cust-404") not in str(err.value)


def test_lists_the_index_leaves_short_are_ranked_exactly(toy_ds: ToyDataset, toy_model: ToyModel,
                                                         tmp_path: Path) -> None:
    from recsys.retrieval.index_spec import load_spec
    from recsys.retrieval.topk import exact_top_k
    from recsys.serving import export_bundle

    out = export_bundle(toy_model, toy_ds, load_spec("ivf_flat"), tmp_path / "ivf",
                        export_settings(), {})
    rec = Recommender.load(out)
    rec.index.set_params({"nprobe": 1})  # one of its lists: fewer than k items
    users = rec.user_ids[:10].tolist()
    ranked = rec.rank(users, 50, exclude_purchased=False)
    assert len(ranked.item_idx) == 10 * 50
    _, want = exact_top_k(rec.user_vectors[:10], rec.item_vectors, 50)
    np.testing.assert_array_equal(ranked.item_idx.reshape(10, 50), want)
