"""One-pass sequence training (``datamodule.examples: sequence``): the causal Transformer reads
each user's latest purchases once and every purchase with an older basket in that window is a
target; its user vector equals the per-position path's for the same history, its history never
holds its own basket or anything later, and the bad settings are refused on one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from recsys.data import load_dataset
from recsys.errors import ConfigError
from recsys.training.store import FeatureStore, history_vectors
from recsys.training.tables import build_tables
from recsys.training.train import build_datamodule, build_system, train

Make = Callable[..., DictConfig]
SEQ = ("datamodule.examples=sequence", "model/history_encoder=transformer",
       "model.history_encoder.position=chronological", "datamodule.batch_size=8")
BARE = ("datamodule.examples=sequence", "datamodule.batch_size=8")


def test_targets_read_only_older_baskets_and_cover_every_such_purchase(tiny_dataset: Path
                                                                        ) -> None:
    history = 6
    tables = build_tables(load_dataset(tiny_dataset), None, history_len=history, social_len=3,
                          user_buckets=101, multi_hot_len=4)
    assert tables.timestamped
    store = FeatureStore(tables)
    users = torch.arange(len(tables.user_offsets) - 1)
    inputs, rows, at, pos = store.sequence_targets(users)
    offsets, starts = tables.user_offsets, tables.seq_basket_start
    got = sorted(zip(rows.tolist(), at.tolist(), pos.tolist(), strict=True))
    want = []
    for u in users.tolist():
        end = int(offsets[u + 1])
        window = list(range(end - 1, max(int(offsets[u]), end - history) - 1, -1))
        assert [int(i) - 1 for i in inputs.hist_items[u] if i > 0] == \
            [int(tables.seq_items[p]) for p in window]
        for p in window:
            older = [j for j, q in enumerate(window) if q < starts[p]]
            if starts[p] == offsets[u]:  # the first basket: an empty history
                want.append((u, -1, p))
            elif older:  # the first older purchase starts the target's history
                want.append((u, older[0], p))
                # that history is every purchase before the target's basket in the window
                assert all(window[j] < starts[p] for j in range(older[0], len(window)))
                assert all(window[j] >= starts[p] for j in range(older[0]))
    assert got == sorted(want) and min(at.tolist()) == -1 and max(at.tolist()) > 0
    # a purchase whose older baskets all lie beyond the window is no target (no history to read)
    assert len(got) < sum(min(history, int(offsets[u + 1] - offsets[u])) for u in users.tolist())


def test_random_window_ends_make_every_positive_a_target_and_read_nothing_later(
        tiny_dataset: Path) -> None:
    tables = build_tables(load_dataset(tiny_dataset), None, history_len=3, social_len=3,
                          user_buckets=101, multi_hot_len=4)
    store = FeatureStore(tables)
    users = torch.arange(len(tables.user_offsets) - 1)
    seen: set[int] = set()
    torch.manual_seed(0)
    for _ in range(60):
        inputs, rows, at, pos = store.sequence_targets(users, random_end=True)
        for r, a, p in zip(rows.tolist(), at.tolist(), pos.tolist(), strict=True):
            window = [int(i) - 1 for i in inputs.hist_items[r] if i > 0]
            read = window[a:] if a >= 0 else []
            start = int(tables.seq_basket_start[p])
            # the history holds only purchases before the target's basket (positions < start)
            assert read == [int(tables.seq_items[q]) for q in range(start - 1, start - 1 - len(read), -1)]
        seen.update(pos.tolist())
    latest = store.sequence_targets(users)[3]
    # every positive can be a target but one whose own basket fills the window before it
    user_start = tables.user_offsets[tables.seq_users]
    basket = tables.seq_basket_start
    eligible = {p for p in range(tables.n_train)
                if basket[p] == user_start[p] or p + 1 - basket[p] < 3}
    assert seen == eligible and len(eligible) > len(set(latest.tolist()))  # older ones too


@pytest.mark.parametrize(("source", "position"), [("separate", "chronological"),
                                                  ("shared", "chronological"), ("shared", "none")])
def test_one_pass_user_vectors_equal_the_per_position_ones(make_cfg: Make, source: str,
                                                           position: str) -> None:
    # a window holding every purchase: the suffix the one pass reads is then exactly the
    # per-position history, and chronological ranks (from the oldest item) are the same in both
    cfg = make_cfg(*SEQ, f"model.history_encoder.position={position}",
                   "datamodule.history_len=64", f"model.net.user_tower.history_source={source}")
    dm = build_datamodule(cfg)
    system = build_system(cfg, dm).eval()
    store, net = system.store, system.net
    users = torch.arange(12)
    with torch.no_grad():
        inputs, rows, at, pos = store.sequence_targets(users)
        one_pass = net.user_sequence(inputs, history_vectors(net, store, inputs.hist_items),
                                     rows, at)
        per_inputs, _ = store.train_inputs(pos)
        per = net.user(per_inputs, history_vectors(net, store, per_inputs.hist_items))
    assert len(pos) > 0 and torch.equal(store.seq_users[pos], users[rows])
    torch.testing.assert_close(one_pass, per, atol=1e-5, rtol=1e-4)


def test_a_batch_without_targets_is_a_zero_step(make_cfg: Make) -> None:
    # users whose one-item window is not their first basket: no target, a zero loss, no NaN
    cfg = make_cfg(*SEQ, "datamodule.history_len=1")
    system = build_system(cfg, build_datamodule(cfg))
    store = system.store
    later = torch.nonzero(store.seq_basket_start[store.user_offsets[1:] - 1]
                          > store.user_offsets[:-1]).flatten()[:8]
    assert len(later) == 8
    loss = system.training_step({"seq_users": later, "random_end": torch.tensor(False)}, 0)
    assert loss.requires_grad and float(loss) == 0.0


@pytest.mark.parametrize("loss", ["sampled_softmax", "full_softmax"])
def test_sequence_examples_train_and_validate(make_cfg: Make, loss: str) -> None:
    cfg = make_cfg(*SEQ, f"model/loss={loss}", "trainer.max_epochs=2", "test=false")
    metrics, objects = train(cfg)
    assert np.isfinite(metrics["objective"]) and np.isfinite(metrics["train/loss_epoch"])
    assert objects["trainer"].global_step > 0


@pytest.mark.parametrize(("overrides", "message", "key"), [
    (("model/history_encoder=attention",), "needs the causal Transformer history encoder",
     "model.history_encoder"),
    (("model/history_encoder=transformer", "model.history_encoder.position=time_gap"),
     "position=chronological or none", "model.history_encoder.position"),
    (("model/history_encoder=transformer", "model.history_encoder.position=learned"),
     "position=chronological or none", "model.history_encoder.position"),
])
def test_sequence_examples_refuse_encoders_that_cannot_run_in_one_pass(
        make_cfg: Make, overrides: tuple[str, ...], message: str, key: str) -> None:
    cfg = make_cfg(*BARE, *overrides, "trainer.max_epochs=1", "test=false")
    with pytest.raises(ConfigError, match=message) as err:
        train(cfg)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_sequence_examples_refuse_the_image_kernel(make_cfg: Make, tiny_features: Path) -> None:
    cfg = make_cfg(*SEQ, "experiment=images", f"datamodule.image_features_dir={tiny_features}",
                   "model.net.user_tower.history_source=shared",
                   "model.net.item_tower.image_kernel_dim=8", "trainer.max_epochs=1",
                   "test=false")
    with pytest.raises(ConfigError, match="does not support the image kernel") as err:
        train(cfg)
    assert "model.net.item_tower.image_kernel_dim" in str(err.value)
    assert "\n" not in str(err.value)
