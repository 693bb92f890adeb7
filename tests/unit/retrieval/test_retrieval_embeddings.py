"""Embedding export through the model protocol: batching, shapes, non-finite values."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.errors import ConfigError, ModelError
from recsys.retrieval import tuning
from recsys.retrieval.embeddings import StaticEmbeddings, read_embeddings
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import load_spec


class CountingModel(StaticEmbeddings):
    """Records the batch sizes it is asked for."""

    calls: list[int]

    def user_embeddings(self, user_idx: np.ndarray) -> np.ndarray:
        self.calls.append(len(user_idx))
        return super().user_embeddings(user_idx)


def test_users_are_embedded_in_batches_in_order() -> None:
    rng = np.random.default_rng(0)
    model = CountingModel(rng.normal(size=(30, 4)), rng.normal(size=(25, 4)))
    model.calls = []
    users = np.array([24, 3, 7, 0, 11, 5, 9])
    out = read_embeddings(model, users, batch_size=3)
    assert model.calls == [3, 3, 1]
    np.testing.assert_allclose(out.users, model.users[users].astype(np.float32))
    assert out.items.dtype == np.float32 and out.dim == 4


def test_bad_model_outputs_are_model_errors() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(5, 3))
    with pytest.raises(ModelError, match="non-finite"):
        read_embeddings(StaticEmbeddings(items * np.nan, rng.normal(size=(2, 3))),
                          np.arange(2), 8)
    with pytest.raises(ModelError, match="user embeddings"):
        read_embeddings(StaticEmbeddings(items, rng.normal(size=(2, 4))), np.arange(2), 8)
    with pytest.raises(ConfigError, match="similarity"):
        read_embeddings(StaticEmbeddings(items, items, "manhattan"), np.arange(2), 8)


def test_recall_is_tie_aware_and_maps_ids() -> None:
    items = np.array([[3.0], [2.0], [2.0], [1.0], [0.0]], dtype=np.float32)
    ids = np.array([10, 11, 12, 13, 14])
    index = ItemIndex.build(items, load_spec("flat"), "dot", ids=ids)
    truth = tuning.exact_truth(index, items, ids, np.array([[1.0], [1.0]], np.float32), 2)
    assert truth.ids[0, 0] == 10
    # 12 ties with 11 for second place: either counts; 13 is worse; -1 never counts
    assert truth.recall(np.array([[10, 12], [12, 10]])) == 1.0
    assert truth.recall(np.array([[10, 13], [-1, 11]])) == pytest.approx(2 / 4)
