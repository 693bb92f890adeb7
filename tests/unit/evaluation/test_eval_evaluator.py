"""Evaluator on the toy dataset: slices, exclusion, metrics.json shape, report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.errors import ConfigError, DataError, ModelError
from recsys.evaluation.eval_data import prepare_eval_data
from recsys.evaluation.evaluator import EvalSettings, evaluate, rank_users
from recsys.evaluation.methods import build_methods
from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.report import write_report
from recsys.evaluation.toy import ToyDataset, make_toy_dataset

METHODS = {
    "popularity": {"kind": "popularity"},
    "repurchase": {"kind": "repurchase", "half_life_days": 7, "fallback_window_days": 7},
    "als": {"kind": "als", "factors": 8, "regularization": 0.05, "iterations": 5, "alpha": 10},
    "two_tower": {"kind": "checkpoint", "path": None},
    "two_tower_rep": {"kind": "history_first", "base": "two_tower"},
    "als_rep": {"kind": "history_first", "base": "als", "half_life_days": 7},
}

RUN = {"batch_size": 16, "seed": 0, "threads": 1}


@pytest.fixture(scope="module")
def toy() -> ToyDataset:
    return make_toy_dataset()


def test_eval_data_history_truth_and_cold_flags(toy: ToyDataset) -> None:
    data = prepare_eval_data(toy, "test")
    assert data.history_splits == ("train", "val")
    test_pos = toy.test[toy.test["positive"]]
    assert set(data.users) == set(test_pos["user_idx"])
    assert data.truth.nnz == len(test_pos[["user_idx", "item_idx"]].drop_duplicates())
    seen = set(toy.train[toy.train["positive"]]["item_idx"]) | set(
        toy.val[toy.val["positive"]]["item_idx"])
    assert set(np.flatnonzero(data.cold_items)) == set(range(80)) - seen
    assert data.cold_items.sum() == 6 and data.cold_users.sum() == 4
    assert prepare_eval_data(toy, "val").history_splits == ("train",)
    # cached once on the frozen dataclass, read-only so no reader can change it for the others
    assert data.item_user_counts is data.item_user_counts and data.cold_items is data.cold_items
    assert not data.cold_items.flags.writeable
    np.testing.assert_array_equal(
        data.item_user_counts, np.asarray((data.history > 0).sum(axis=0)).ravel())


def test_eval_data_caches_the_evaluated_truth_and_history_user_count(toy: ToyDataset) -> None:
    data = prepare_eval_data(toy, "test")
    assert data.user_truth is data.user_truth
    assert data.user_truth.shape == (len(data.users), data.n_items)
    assert (data.user_truth != data.truth[data.users]).nnz == 0
    hist_users = int((np.diff(data.history.indptr) > 0).sum())
    assert 0 < data.n_history_users == hist_users < data.history.shape[0]


def test_bad_splits_and_columns_are_reported(toy: ToyDataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val or test"):
        prepare_eval_data(toy, "train")
    with pytest.raises(ConfigError, match="must not contain"):
        prepare_eval_data(toy, "test", ["train", "test"])
    broken = make_toy_dataset()
    broken.path = tmp_path
    broken.test = broken.test.drop(columns="positive")
    with pytest.raises(DataError, match="column 'positive'") as err:
        prepare_eval_data(broken, "test")
    assert "test.parquet" in str(err.value)
    broken = make_toy_dataset()
    row = int(broken.train.index[broken.train["positive"]][3])
    broken.train.loc[row, "item_idx"] = 999
    with pytest.raises(DataError, match=f"row {row}, column 'item_idx'"):
        prepare_eval_data(broken, "test")


def test_methods_registry_skips_and_refuses(toy: ToyDataset) -> None:
    data = prepare_eval_data(toy, "test")
    built = build_methods(METHODS, data, **RUN)
    assert list(built) == ["popularity", "repurchase", "als", "als_rep"]
    with pytest.raises(ConfigError, match="not one of"):
        build_methods({"x": {"kind": "magic"}}, data, **RUN)
    with pytest.raises(ConfigError, match="missing setting"):
        build_methods({"x": {"kind": "als", "factors": 4}}, data, **RUN)
    with pytest.raises(ConfigError, match="earlier method"):
        build_methods({"x": {"kind": "history_first", "base": "nothing"}}, data, **RUN)
    with pytest.raises(ConfigError, match="no method"):
        build_methods({"x": {"kind": "checkpoint", "path": None}}, data, **RUN)


def test_evaluate_slices_exclusion_and_report(toy: ToyDataset, tmp_path: Path) -> None:
    data = prepare_eval_data(toy, "test")
    methods = build_methods(METHODS, data, **RUN)
    settings = EvalSettings(ks=(5, 12, 20), main_k=12, exclude_purchased=False,
                            segments=("gender", "age", "absent"), min_segment_users=5)
    result = evaluate(methods, data, settings, data_name="toy")
    doc = result.to_dict()
    assert doc["split"] == "test" and doc["data"] == "toy"
    assert set(doc["methods"]) == set(methods)
    for values in doc["methods"].values():
        assert {"recall@12", "ndcg@12", "hitrate@12", "mrr@12", "map@12", "coverage@12",
                "novelty@12"} <= set(values)
        assert values["recall@5"] <= values["recall@12"] <= values["recall@20"]
    assert {"cold_items", "warm_items", "cold_users", "warm_users", "gender=f"} <= set(
        doc["slices"])
    assert not any(s.startswith("absent") for s in doc["slices"])
    assert doc["slices"]["cold_users"]["n_users"] == 4
    # repurchase puts history first: on the toy data it must beat popularity
    assert doc["methods"]["repurchase"]["recall@12"] > doc["methods"]["popularity"]["recall@12"]
    # the cold-item slice is computed on cold items only: popularity never ranks them
    assert doc["slices"]["cold_items"]["methods"]["popularity"]["recall@20"] == 0.0
    top = rank_users(methods["repurchase"], data, 12, exclude_purchased=False)
    assert ranking_metrics(top, data.truth[data.users], [12])["recall@12"] == pytest.approx(
        doc["methods"]["repurchase"]["recall@12"])
    out = write_report(result, tmp_path / "report")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["methods"]["als"]["recall@12"] == pytest.approx(doc["methods"]["als"]["recall@12"])
    text = (out / "report.md").read_text()
    assert "| repurchase |" in text and "plots/recall_vs_k.png" in text
    for name in ("metrics_per_method", "recall_vs_k", "cold_vs_warm"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_exclude_purchased_removes_history_items(toy: ToyDataset) -> None:
    data = prepare_eval_data(toy, "test")
    methods = build_methods({"repurchase": METHODS["repurchase"]}, data, **RUN)
    top = rank_users(methods["repurchase"], data, 10, exclude_purchased=True)
    hist = data.history[data.users]
    for row, items in zip(top, hist, strict=True):
        assert not np.isin(row, items.indices).any()
    kept = rank_users(methods["repurchase"], data, 10, exclude_purchased=False)
    assert any(np.isin(r, h.indices).any() for r, h in zip(kept, hist, strict=True))


def test_rare_items_slice_holds_purchases_of_items_with_few_history_users(toy: ToyDataset) -> None:
    data = prepare_eval_data(toy, "test")
    methods = build_methods({"p": {"kind": "popularity"}}, data, **RUN)
    plain = evaluate(methods, data, EvalSettings((12,), 12, False, (), 1)).to_dict()
    assert "rare_items" not in plain["slices"]
    settings = EvalSettings((12,), 12, False, (), 1, rare_item_max_users=2)
    doc = evaluate(methods, data, settings).to_dict()
    rare = data.item_user_counts <= 2
    assert rare.sum() > data.cold_items.sum()  # cold items and some bought by 1-2 users
    truth = data.user_truth
    expected_users = int((np.asarray(truth[:, np.flatnonzero(rare)].sum(axis=1)).ravel() > 0).sum())
    assert doc["slices"]["rare_items"]["n_users"] == expected_users
    top = rank_users(methods["p"], data, 12, exclude_purchased=False)
    has = np.asarray(truth[:, np.flatnonzero(rare)].sum(axis=1)).ravel() > 0
    sub = truth[has].multiply(rare[np.newaxis, :].astype(np.float32)).tocsr()
    assert ranking_metrics(top[has], sub, [12])["recall@12"] == pytest.approx(
        doc["slices"]["rare_items"]["methods"]["p"]["recall@12"])


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="rare_item_max_users"):
        EvalSettings((12,), 12, False, (), 1, rare_item_max_users=-1)
    with pytest.raises(ConfigError, match="main_k"):
        EvalSettings((5, 10), 12, False, (), 1)
    with pytest.raises(ConfigError, match="positive"):
        EvalSettings((0, 12), 12, False, (), 1)
    data = prepare_eval_data(make_toy_dataset(), "test")
    with pytest.raises(ConfigError, match="exceeds the catalogue"):
        evaluate(build_methods({"p": {"kind": "popularity"}}, data, **RUN), data,
                 EvalSettings((12, 500), 12, False, (), 1))


def test_checkpoint_methods_rank_with_the_models_vectors(toy: ToyDataset,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.evaluation import methods as registry
    from recsys.retrieval.embeddings import StaticEmbeddings

    rng = np.random.default_rng(0)
    model = StaticEmbeddings(rng.normal(size=(80, 4)), rng.normal(size=(60, 4)), "cosine")
    seen: list[tuple[str, str]] = []

    def fake_load(path: str, device: str, history_splits: tuple[str, ...]) -> StaticEmbeddings:
        seen.append((str(path), device))
        assert tuple(history_splits) == data.history_splits  # the baselines' history
        return model

    monkeypatch.setattr(registry, "load_embedding_model", fake_load)
    data = prepare_eval_data(toy, "test")
    monkeypatch.setattr(registry, "checkpoint_fingerprint", lambda path: data.fingerprint)
    specs = {"tower": {"kind": "checkpoint", "path": "x.ckpt", "device": "cpu"},
             "tower_rep": {"kind": "history_first", "base": "tower"}}
    built = build_methods(specs, data, **RUN)
    assert seen == [("x.ckpt", "cpu")] and list(built) == ["tower", "tower_rep"]
    scores = (model.users[data.users] / np.linalg.norm(model.users[data.users], axis=1)[:, None]
              ) @ (model.items / np.linalg.norm(model.items, axis=1)[:, None]).T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rank_users(built["tower"], data, 5, False), expected)
    with pytest.raises(ConfigError, match="missing setting 'device'"):
        build_methods({"t": {"kind": "checkpoint", "path": "x.ckpt"}}, data, **RUN)


def test_checkpoint_loading_errors(tmp_path: Path) -> None:
    from recsys.devices import resolve_device
    from recsys.evaluation.baselines.two_tower import load_embedding_model

    with pytest.raises(ModelError, match="checkpoint not found"):
        load_embedding_model(tmp_path / "missing.ckpt", "cpu")
    for bad in ("tpu", "cpux", "cuda:x"):
        with pytest.raises(ConfigError, match=f"must be auto, cpu, cuda or cuda:N, got '{bad}'"):
            resolve_device(bad)
    assert resolve_device("auto") in ("cpu", "cuda")


def test_resolve_device_is_shared_and_refuses_cuda_without_a_gpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from recsys import devices
    from recsys.images import extract
    from recsys.retrieval import converter

    assert converter.resolve_device is devices.resolve_device
    assert extract.resolve_device is devices.resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == "cpu" and devices.resolve_device("cpu") == "cpu"
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match="CUDA is not available"):
            devices.resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == "cuda"
    assert devices.resolve_device("cuda:1") == "cuda:1"
