"""FAISS item index: exactness of Flat, ANN recall of IVF/HNSW/IVF-PQ, metrics, params, ids."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.errors import ConfigError, ModelError
from recsys.retrieval import tuning
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec, load_spec
from recsys.retrieval.similarity import prepare
from recsys.retrieval.topk import exact_top_k


def clustered(n: int, d: int, seed: int, centers: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    return (c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def brute(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def test_flat_index_equals_brute_force_with_original_ids() -> None:
    items, queries = clustered(500, 16, 0), clustered(30, 16, 1)
    ids = np.arange(500, dtype=np.int64) * 7 + 3
    index = ItemIndex.build(items, load_spec("flat"), "dot", ids=ids)
    scores, found = index.search(queries, 10)
    expected = brute(queries, items, 10)
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores[:, 0], (queries @ items.T).max(1), rtol=1e-5)
    assert index.metric == "ip"


def test_cosine_model_gets_normalised_vectors() -> None:
    items, queries = clustered(300, 8, 2), clustered(10, 8, 3)
    items[:5] *= 100.0  # large norms would win under a plain dot product
    index = ItemIndex.build(items, load_spec("flat"), "cosine")
    _, found = index.search(prepare(queries, "cosine"), 5)
    expected = brute(prepare(queries, "cosine"), prepare(items, "cosine"), 5)
    np.testing.assert_array_equal(found, expected)


def test_l2_index_for_inner_product_model_is_refused() -> None:
    spec = load_spec("flat", metric="l2")
    with pytest.raises(ConfigError, match="does not rank like"):
        ItemIndex.build(clustered(50, 4, 0), spec, "dot")
    l2 = ItemIndex.build(clustered(50, 4, 0), spec, "l2")
    assert l2.metric == "l2"


@pytest.mark.parametrize(
    ("factory", "param", "values", "params"),
    [("IVF{nlist},Flat", "nprobe", (1, 4, 16, 64), {}),
     ("HNSW16", "efSearch", (16, 64, 256, 512), {}),
     ("IVF{nlist},PQ{pq_m}np,RFlat", "nprobe", (1, 4, 16, 64), {"k_factor_rf": 4})],
)
def test_ann_indexes_reach_target_recall_after_tuning(
    factory: str, param: str, values: tuple[int, ...], params: dict[str, float]
) -> None:
    items = prepare(clustered(3000, 16, 4), "cosine")
    queries = prepare(clustered(200, 16, 5), "cosine")
    spec = load_spec("flat", name="ann", factory=factory, train_size=2000,
                     search_params=params)
    index = ItemIndex.build(items, spec, "cosine")
    truth = tuning.exact_truth(index, items, np.arange(3000), queries, 10)
    report = tuning.tune(index, truth, param, values, 0.95)
    assert report.recall >= 0.95
    assert index.params[param] == report.params[param]
    index.set_params({param: values[0]})
    assert tuning.measure(index, truth).recall < 0.95


def test_nlist_auto_and_small_catalogue_limits() -> None:
    spec = load_spec("ivf_flat")
    assert spec.resolve_nlist(1_000_000) == 4000
    assert spec.resolve_nlist(2000) == 2000 // 39
    with pytest.raises(ConfigError, match="needs at least 256"):
        load_spec("ivf_pq", factory="IVF{nlist},PQ{pq_m}").resolve_factory(100, 8)
    with pytest.raises(ConfigError, match="must divide"):
        load_spec("ivf_pq", factory="PQ{pq_m}", pq_m=5).resolve_factory(1000, 8)


def test_search_parameter_that_does_not_apply_is_a_config_error() -> None:
    spec = load_spec("hnsw", factory="HNSW8", build_params={}, search_params={})
    index = ItemIndex.build(clustered(100, 4, 0), spec, "dot")
    with pytest.raises(ConfigError, match="nprobe"):
        index.set_params({"nprobe": 4})


def test_unknown_factory_and_config_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="factory"):
        ItemIndex.build(clustered(100, 4, 0), load_spec("flat", factory="Bogus12"), "dot")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_spec("flat", nprobes=3)
    with pytest.raises(ConfigError, match="missing keys"):
        IndexSpec.from_config({"name": "x", "factory": "Flat"})
    with pytest.raises(ConfigError, match="no index config"):
        load_spec("annoy")
    spec = load_spec("hnsw", search_params={"efSearch": 9},
                     tune={"param": "efSearch", "values": [8, 16], "target_recall": 0.9})
    assert spec.tune_param == "efSearch" and spec.tune_values == (8, 16)


def test_search_excludes_items_and_pads_when_too_few_remain() -> None:
    items, queries = clustered(20, 4, 6), clustered(3, 4, 7)
    index = ItemIndex.build(items, load_spec("flat"), "dot")
    base = brute(queries, items, 20)
    drop = sp.csr_matrix((np.ones(5), (np.zeros(5, int), base[0, :5])), shape=(3, 20))
    _, found = index.search(queries, 5, excluded=drop)
    np.testing.assert_array_equal(found[0], base[0, 5:10])
    np.testing.assert_array_equal(found[1], base[1, :5])
    everything = sp.csr_matrix(np.ones((3, 20)))
    everything[0, base[0, 3]] = 0
    everything.eliminate_zeros()
    scores, found = index.search(queries, 2, excluded=everything)
    assert found[0].tolist() == [base[0, 3], -1] and np.isneginf(scores[0, 1])


def test_batched_search_equals_one_batch_with_exclusions() -> None:
    items, queries = clustered(60, 4, 8), clustered(7, 4, 9)
    index = ItemIndex.build(items, load_spec("flat"), "dot")
    drop = sp.csr_matrix(np.random.default_rng(2).random((7, 60)) < 0.3)
    whole = index.search(queries, 6, excluded=drop)
    parts = index.search(queries, 6, excluded=drop, batch_size=3)  # batches of 3, 3 and 1
    np.testing.assert_array_equal(parts[1], whole[1])
    np.testing.assert_allclose(parts[0], whole[0])
    assert not drop[np.arange(7)[:, None], whole[1]].toarray().any()


def test_k_and_query_shape_are_checked() -> None:
    index = ItemIndex.build(clustered(10, 4, 0), load_spec("flat"), "dot")
    for k in (0, -1, 11):
        with pytest.raises(ConfigError, match="catalogue size 10"):
            index.search(clustered(1, 4, 0), k)
    with pytest.raises(ModelError, match="dimension"):
        index.search(np.zeros((1, 5), np.float32), 3)


def test_serialisation_round_trip_keeps_results_and_params() -> None:
    items, queries = clustered(1000, 8, 8), clustered(20, 8, 9)
    index = ItemIndex.build(items, load_spec("ivf_flat", search_params={"nprobe": 3}), "dot")
    again = ItemIndex.from_bytes(index.to_bytes(), index.factory, index.params)
    np.testing.assert_array_equal(again.search(queries, 7)[1], index.search(queries, 7)[1])
    assert again.params == {"nprobe": 3}


def test_exact_top_k_l2_and_exclusion_match_numpy() -> None:
    items, queries = clustered(200, 6, 10), clustered(40, 6, 11)
    d2 = ((queries[:, None, :] - items[None]) ** 2).sum(-1)
    _, ids = exact_top_k(queries, items, 8, metric="l2", batch_size=7)
    np.testing.assert_array_equal(ids, np.argsort(d2, axis=1, kind="stable")[:, :8])
    rng = np.random.default_rng(0)
    mask = sp.csr_matrix(rng.random((40, 200)) < 0.3)
    _, ids = exact_top_k(queries, items, 8, excluded=mask, batch_size=16)
    scores = queries @ items.T
    scores[mask.toarray()] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-scores, axis=1, kind="stable")[:, :8])



def test_exact_top_k_chunks_by_score_budget_with_l2_and_exclusion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recsys.retrieval import topk

    items, queries = clustered(50, 4, 12), clustered(9, 4, 13)
    mask = sp.csr_matrix(np.random.default_rng(1).random((9, 50)) < 0.2)
    monkeypatch.setattr(topk, "SCORE_CHUNK_FLOATS", 100)  # 2 queries per chunk, 5 chunks
    assert topk.chunk_rows(1024, 50, 9) == 2
    _, ids = exact_top_k(queries, items, 6, excluded=mask, metric="l2")
    d2 = ((queries[:, None, :] - items[None]) ** 2).sum(-1)
    d2[mask.toarray()] = np.inf
    np.testing.assert_array_equal(ids, np.argsort(d2, axis=1, kind="stable")[:, :6])
