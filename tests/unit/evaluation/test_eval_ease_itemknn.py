"""EASE and ItemKNN on hand-checkable matrices; time-aware methods on data without times; the
data-fingerprint guard for checkpoints and bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.errors import ConfigError, ModelError
from recsys.evaluation.baselines.ease import ease_weights, fit_ease
from recsys.evaluation.baselines.itemknn import fit_itemknn, knn_weights
from recsys.evaluation.eval_data import item_gram, prepare_eval_data
from recsys.evaluation.methods import build_methods
from recsys.evaluation.toy import make_toy_dataset

RUN = {"batch_size": 16, "seed": 0, "threads": 1}
# items 0: users {0, 1}; 1: {0, 1, 2}; 2: {1, 2}; 3: {3}
X = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]],
                           dtype=np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ease_two_items_always_together(dtype: str) -> None:
    # gram [[2 + l2, 2], [2, 2 + l2]]: B01 = -P01 / P11 = 2 / (2 + l2)
    pair = sp.csr_matrix(np.ones((2, 2), dtype=np.float32))
    np.testing.assert_allclose(ease_weights(item_gram(pair), 2.0, dtype), [[0.0, 0.5], [0.5, 0.0]],
                               rtol=1e-6)


def test_ease_matches_the_closed_form_and_scores_histories() -> None:
    counts = X.copy()
    counts.data[:] = 3.0  # repeated interactions count once
    gram = X.toarray().T @ X.toarray() + 10.0 * np.eye(4)
    p = np.linalg.inv(gram)
    want = p / -np.diag(p)
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(ease_weights(item_gram(counts), 10.0), want, rtol=1e-5, atol=1e-7)
    ranker = fit_ease(counts, l2=10.0)
    np.testing.assert_allclose(ranker.scores(np.array([2])).numpy(), X[2].toarray() @ want,
                               rtol=1e-5, atol=1e-7)
    for bad in ({"l2": 0.0}, {"l2": 1.0, "dtype": "float16"}):
        with pytest.raises(ConfigError):
            fit_ease(X, **bad)  # type: ignore[arg-type]


def test_edlae_adds_the_dropout_penalty_to_eases_closed_form() -> None:
    # EDLAE (full emphasis): EASE's solution with l2 I + p / (1 - p) diag(X'X) as the penalty
    gram = X.toarray().T @ X.toarray()
    p = 0.4
    inv = np.linalg.inv(gram + np.diag(10.0 + p / (1 - p) * np.diag(gram)))
    want = inv / -np.diag(inv)
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(ease_weights(item_gram(X), 10.0, dropout=p), want, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(ease_weights(item_gram(X), 10.0, dropout=0.0),
                                  ease_weights(item_gram(X), 10.0))  # dropout 0 is EASE
    assert not np.allclose(want, ease_weights(item_gram(X), 10.0), atol=1e-3)
    data = prepare_eval_data(make_toy_dataset(), "test")
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError) as err:
            build_methods({"edlae": {"kind": "ease", "l2": 10.0, "dtype": "float64",
                                     "dropout": bad}}, data, **RUN)
        assert err.value.column == "eval.methods.edlae.dropout"
        assert f"EASE dropout must lie in [0, 1), got {bad}" in str(err.value)


def test_itemknn_keeps_k_cosine_neighbours_with_shrinkage() -> None:
    w = knn_weights(item_gram(X), k=1, shrink=0.0).toarray()
    # column j holds j's single nearest item: 0 -> 1 (2/sqrt6), 1 -> 0 (tie with 2: lower index),
    # 2 -> 1; item 3 shares no user with anyone
    c = 2 / np.sqrt(6)
    np.testing.assert_allclose(w, [[0, c, 0, 0], [c, 0, c, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                               rtol=1e-6)
    shrunk = knn_weights(item_gram(X), k=3, shrink=1.0).toarray()
    assert shrunk[2, 0] == pytest.approx(1 / (np.sqrt(2) * np.sqrt(2) + 1.0))
    assert shrunk[1, 0] == pytest.approx(2 / (np.sqrt(2) * np.sqrt(3) + 1.0))
    assert np.all(np.diag(shrunk) == 0) and shrunk[3].sum() == shrunk[:, 3].sum() == 0
    ranker = fit_itemknn(X, k=3, shrink=1.0)
    np.testing.assert_allclose(ranker.scores(np.array([0])).numpy()[0], shrunk[0] + shrunk[1],
                               rtol=1e-6)
    with pytest.raises(ConfigError, match="k >= 1"):
        fit_itemknn(X, k=0, shrink=0.0)


def test_itemknn_blocks_agree_with_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    hist = sp.csr_matrix((rng.random((30, 25)) < 0.3).astype(np.float32))
    whole = knn_weights(item_gram(hist), k=4, shrink=2.0).toarray()
    monkeypatch.setattr("recsys.evaluation.baselines.itemknn.BLOCK_FLOATS", 60)  # 2 columns
    np.testing.assert_array_equal(knn_weights(item_gram(hist), k=4, shrink=2.0).toarray(), whole)
    assert ((whole > 0).sum(axis=0) <= 4).all()


def test_time_aware_methods_are_skipped_without_timestamps() -> None:
    toy = make_toy_dataset()
    for name in ("train", "val", "test"):
        getattr(toy, name)["timestamp"] = np.datetime64("NaT")
    data = prepare_eval_data(toy, "test")
    specs = {"pop": {"kind": "popularity"}, "recent": {"kind": "popularity", "window_days": 7},
             "rep": {"kind": "repurchase", "half_life_days": 7, "fallback_window_days": None},
             "ease": {"kind": "ease", "l2": 10.0, "dtype": "float32"},
             "knn": {"kind": "itemknn", "k": 5, "shrink": 0.0},
             "knn_rep": {"kind": "history_first", "base": "knn", "half_life_days": 3}}
    built = build_methods(specs, data, **RUN)
    assert list(built) == ["pop", "ease", "knn"]


def _fake_checkpoint(path: Path, fingerprint: str) -> Path:
    torch.save({"state_dict": {}, "hyper_parameters": {
        "signature": {"schema": {}, "net": {}, "data_fingerprint": fingerprint}}}, path)
    return path


def test_checkpoint_or_bundle_of_another_dataset_is_refused(tmp_path: Path) -> None:
    toy = make_toy_dataset()
    toy.write(tmp_path / "toy")
    data = prepare_eval_data(toy, "test")
    ckpt = _fake_checkpoint(tmp_path / "other.ckpt", "feedbeef")
    spec = {"kind": "checkpoint", "path": str(ckpt), "device": "cpu"}
    with pytest.raises(ModelError) as err:
        build_methods({"tower": spec}, data, **RUN)
    message = str(err.value)
    assert "'feedbeef'" in message and f"{data.fingerprint!r}" in message
    assert str(ckpt) in message and str(tmp_path / "toy" / "manifest.json") in message
    assert "\n" not in message
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"data_fingerprint": "cafe"}))
    with pytest.raises(ModelError, match=r"bundle .*bundle was built on data_fingerprint 'cafe'"):
        build_methods({"b": {"kind": "bundle", "path": str(bundle)}}, data, **RUN)


def test_fit_splits_fit_on_less_than_the_excluded_history() -> None:
    toy = make_toy_dataset()
    data = prepare_eval_data(toy, "test", None, ["train"])
    train = toy.train[toy.train["positive"]]
    assert data.history_splits == ("train", "val") and data.fit_names == ("train",)
    assert data.fit.sum() == len(train) < data.history.sum()
    assert data.item_gram.diagonal().sum() == (data.fit > 0).sum()
    ranker = build_methods({"pop": {"kind": "popularity"}}, data, **RUN)["pop"]
    top = ranker.top_k(data.users, 5, data.history)  # the evaluator excludes the whole history
    assert not any(set(top[r]) & set(data.history[u].indices) for r, u in enumerate(data.users))
    same = prepare_eval_data(toy, "test")
    assert same.fit is same.history and same.fit_names == ("train", "val")
    with pytest.raises(ConfigError, match="fit_splits"):
        prepare_eval_data(toy, "val", None, ["val"])


@pytest.mark.slow
def test_evaluate_cli_refuses_a_checkpoint_of_another_dataset(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = make_toy_dataset().write(tmp_path / "toy")
    ckpt = _fake_checkpoint(tmp_path / "other.ckpt", "feedbeef")
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli.evaluate", f"dataset_dir={data}", f"output_dir={out}",
         "eval.only=[two_tower_id]", f"eval.methods.two_tower_id.path={ckpt}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "'feedbeef'" in line and "'toy-0'" in line and str(ckpt) in line
    assert str(data / "manifest.json") in line and not out.exists()


def test_a_bundle_of_the_dataset_ranks_like_its_vectors(tmp_path: Path) -> None:
    from recsys.evaluation.evaluator import EvalSettings, evaluate
    from recsys.evaluation.rankers import EmbeddingRanker
    from recsys.retrieval.embeddings import StaticEmbeddings
    from recsys.retrieval.index_spec import load_spec
    from recsys.serving import ExportSettings, export_bundle

    toy = make_toy_dataset()
    toy.write(tmp_path / "toy")
    data = prepare_eval_data(toy, "test")
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(len(toy.users), 4)), rng.normal(size=(len(toy.items), 4))
    settings = ExportSettings(batch_size=16, history_splits=None, item_columns=None,
                              user_tower=False)
    out = export_bundle(StaticEmbeddings(items, users, "dot"), toy, load_spec("flat"),
                        tmp_path / "bundle", settings, {"test": True})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["history_splits"] == ["train", "val"]  # one history: the test's
    bundle = build_methods({"b": {"kind": "bundle", "path": str(out)}}, data, **RUN)["b"]
    ks = EvalSettings(ks=(5,), main_k=5, exclude_purchased=True, segments=(), min_segment_users=1)
    got = evaluate({"b": bundle}, data, ks).methods["b"].overall
    want = evaluate({"e": EmbeddingRanker(users, items, "dot")}, data, ks).methods["e"].overall
    assert got == pytest.approx(want, abs=1e-9)
