"""Every positive as a target: training histories on data without timestamps (the user's other
positives, never the target), the shared-history user tower in training, evaluation and export,
and the bad inputs of history encoders, losses and objectives (one line, exit 2 via the CLI)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig
from tiny_world import write_dataset

from recsys.data import load_dataset
from recsys.errors import ConfigError
from recsys.training.store import FeatureStore, encode_history_table, encode_users
from recsys.training.tables import build_tables
from recsys.training.train import train

Make = Callable[..., DictConfig]
SHORT = ("trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "test=false")


@pytest.fixture(scope="module")
def untimed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("untimed"), with_images=False, timestamps=False)


def test_untimed_history_is_a_random_subset_of_the_other_positives(untimed: Path) -> None:
    history = 4
    tables = build_tables(load_dataset(untimed), None, history_len=history, social_len=3,
                          user_buckets=101, multi_hot_len=4)
    assert not tables.timestamped
    store = FeatureStore(tables)
    pos = torch.arange(tables.n_train)
    torch.manual_seed(0)
    first, items = store.train_inputs(pos)
    second, _ = store.train_inputs(pos)
    assert items.tolist() == tables.seq_items.tolist()
    assert not torch.equal(first.hist_items, second.hist_items)  # a fresh subset each draw
    offsets = tables.user_offsets
    for p in range(tables.n_train):
        u = int(tables.seq_users[p])
        others = Counter(tables.seq_items[offsets[u]:offsets[u + 1]].tolist())
        others[int(tables.seq_items[p])] -= 1  # the target itself is never in its history
        got = [int(i) - 1 for i in first.hist_items[p] if i > 0]
        assert len(got) == min(history, sum(others.values()))
        assert not Counter(got) - others
        assert (first.hist_items[p][len(got):] == 0).all()  # real entries first


@pytest.mark.parametrize("timestamps", [False, True])
def test_user_examples_split_each_users_positives_into_history_and_targets(
        tmp_path: Path, timestamps: bool) -> None:
    history, keep = 3, 0.5
    data = write_dataset(tmp_path / "d", with_images=False, timestamps=timestamps)
    tables = build_tables(load_dataset(data), None, history_len=history, social_len=3,
                          user_buckets=101, multi_hot_len=4)
    store = FeatureStore(tables)
    offsets = tables.user_offsets
    users = torch.as_tensor(np.flatnonzero(np.diff(offsets) >= 2))
    torch.manual_seed(0)
    inputs, targets, hist = store.split_users(users, keep)
    again, _, _ = store.split_users(users, keep)
    assert not torch.equal(inputs.hist_items, again.hist_items)  # a fresh split each draw
    for row, u in enumerate(users.tolist()):
        own = tables.seq_items[offsets[u]:offsets[u + 1]]
        got = [int(i) - 1 for i in inputs.hist_items[row] if i > 0]
        assert len(got) == min(history, int(len(own) * keep), len(own) - 1)
        assert not Counter(got) - Counter(own.tolist())  # the history is the user's own items
        assert set(np.flatnonzero(hist[row].numpy())) == set(got)
        held = set(np.flatnonzero(targets[row].numpy()))
        assert held <= set(own.tolist()) - set(got)  # targets: never an item of the history
        assert held or set(own.tolist()) <= set(got)
        assert (inputs.hist_items[row][len(got):] == 0).all()
        assert bool((inputs.hist_age[row] >= 0).all())


def test_user_examples_train_with_full_softmax_and_refuse_other_losses(make_cfg: Make,
                                                                       untimed: Path) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "test=false", "datamodule.examples=user",
                   "datamodule.batch_size=8", "model/loss=full_softmax", dataset=untimed)
    metrics, _ = train(cfg)
    assert np.isfinite(metrics["objective"]) and np.isfinite(metrics["train/loss_epoch"])
    with pytest.raises(ConfigError, match="examples=user needs a full-catalogue loss"):
        train(make_cfg(*SHORT, "datamodule.examples=user", "datamodule.batch_size=8",
                       dataset=untimed))


def test_squared_loss_trains_unnormalised_towers_that_convert_to_a_dot_product_index(
        make_cfg: Make, untimed: Path) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "test=false", "datamodule.examples=user",
                   "datamodule.batch_size=8", "model/loss=full_mse", "model.loss.positive_weight=3",
                   "model.net.item_tower.normalize=false", "model.net.temperature=1",
                   "model.net.learn_temperature=false", "model/history_encoder=mean",
                   "model.history_encoder.count_power=0.5", "fusion.hidden=[]", dataset=untimed)
    metrics, objects = train(cfg)
    assert np.isfinite(metrics["objective"]) and np.isfinite(metrics["train/loss_epoch"])
    from recsys.data import load_dataset
    from recsys.retrieval.converter import convert
    from recsys.retrieval.index_spec import IndexSpec
    from recsys.retrieval.trained import load_trained

    trained = load_trained(Path(objects["trainer"].checkpoint_callback.best_model_path))
    assert trained.similarity == "dot"
    items = trained.item_embeddings()
    assert not np.allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-3)  # scale kept
    spec = IndexSpec.from_config({"name": "flat", "factory": "Flat", "metric": "auto",
                                  "train_size": 100, "recall_k": 5, "recall_queries": 20,
                                  "seed": 0})
    retrieval = convert(trained, load_dataset(cfg.dataset_dir), spec, 64, user_tower=False)
    assert retrieval.index.metric == "ip" and np.array_equal(retrieval.items, items)
    users = retrieval.users[:5]
    _, found = retrieval.index.search(users, 5)
    exact = np.argsort(-(users @ items.T), axis=1, kind="stable")[:, :5]
    assert np.array_equal(np.sort(found, 1), np.sort(exact, 1))  # ranks by the raw dot product


@pytest.mark.parametrize("exclude", [False, True])
def test_squared_loss_warns_where_rankings_keep_the_history(make_cfg: Make, untimed: Path,
                                                            exclude: bool,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from recsys.training.train import build_datamodule, build_system

    cfg = make_cfg("datamodule.examples=user", "model/loss=full_mse",
                   "model.net.item_tower.normalize=false", "model.net.temperature=1",
                   "model.net.learn_temperature=false", f"data.exclude_history={exclude}",
                   dataset=untimed)
    with caplog.at_level("WARNING", logger="recsys.training.system"):
        build_system(cfg, build_datamodule(cfg))
    warned = "never fits the items a user already has" in caplog.text
    assert warned is not exclude


def test_untimed_training_with_a_shared_history_learns_and_exports(make_cfg: Make,
                                                                    untimed: Path) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "test=true", "model/history_encoder=mean",
                   "model.net.user_tower.history_source=shared",
                   "model/loss=cosine_contrastive", "model.system.num_negatives=16",
                   "model.net.user_tower.embedding_dropout=0.1", dataset=untimed)
    metrics, objects = train(cfg)
    assert np.isfinite(metrics["objective"]) and "test/recall@20" in metrics
    system = objects["system"].eval()
    store = system.store
    users = torch.arange(10)
    table = encode_history_table(system.net, store)
    assert table is not None
    with torch.no_grad():
        # the vectors validation ranks from read the training history only
        val = encode_users(system.net, store, users, "val", table)
        inputs = store.user_inputs(users, "val")
        assert torch.allclose(val, system.net.user(inputs, table[inputs.hist_items - 1]))
        from recsys.retrieval.trained import load_trained

        trained = load_trained(Path(cfg.run_dir) / "checkpoints" / "best.ckpt")
        tower = torch.jit.script(trained.user_tower_for_export())
        features = trained.encode_user_features(users.numpy())
        assert np.allclose(tower(*features.values()).numpy(),
                           trained.user_embeddings(users.numpy()), atol=1e-5)


@pytest.mark.parametrize("encoder", ["mean", "transformer_set"])  # the set order needs no time
def test_full_softmax_training_with_a_shared_history_learns(make_cfg: Make, untimed: Path,
                                                            encoder: str) -> None:
    cfg = make_cfg("trainer.max_epochs=2", "test=false", f"model/history_encoder={encoder}",
                   "model.net.user_tower.history_source=shared", "model/loss=full_softmax",
                   dataset=untimed)
    metrics, _ = train(cfg)
    assert np.isfinite(metrics["objective"]) and np.isfinite(metrics["train/loss_epoch"])


def _cli(dataset: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    flags = [o for o in overrides if o.startswith("-")]
    overrides = tuple(o for o in overrides if not o.startswith("-"))
    cmd = [sys.executable, "-m", "recsys.cli.train", *flags, f"dataset_dir={dataset}",
           f"paths.output_dir={out}", "torch_threads=1", "~callbacks.progress_bar",
           "model.net.user_tower.id_buckets=101", *SHORT, *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("overrides", "message"), [
    (("model/history_encoder=transformer",), "has no timestamps"),
    (("datamodule.history_len=0",), "datamodule.history_len must be >= 1"),
    (("datamodule.item_id_min_count=0",), "datamodule.item_id_min_count must be >= 1"),
    (("model.history_encoder.item_features=[id,product_image]",),
     "item_features names 'product_image'"),
    (("model.net.temperature=0",), "model.net.temperature 0"),
    (("model/loss=full_softmax", "model.loss.max_items=3"), "above model.loss.max_items=3"),
    (("datamodule.examples=users",), "datamodule.examples must be position, user or sequence"),
    (("datamodule.keep_fraction=1",), "datamodule.keep_fraction must lie in (0, 1)"),
    (("model/loss=full_mse", "model.loss.positive_weight=0"),
     "model.loss.positive_weight must be > 0"),
    (("model/history_encoder=mean", "model.history_encoder.count_power=2"),
     "model.history_encoder.count_power must lie in [0, 1]"),
    (("model.net.user_tower.normalize=false",), "normalize must agree"),
    (("model.optimizer.embedding_weight_decay=-0.1",), "embedding_weight_decay must be >= 0"),
    (("fusion=residual_mlp", "fusion.hidden=[]"), "residual_mlp fusion needs at least one hidden"),
    (("datamodule.examples=sequence", "model/history_encoder=transformer",
      "model.history_encoder.position=none"), "examples=sequence predicts each purchase"),
    (("datamodule.sequence_window=oldest",), "datamodule.sequence_window must be latest or"),
    (("model.net.item_tower.image_kernel_dim=8",), "image_kernel_dim > 0 needs image features"),
    (("model.net.item_tower.image_kernel_dim=-1",), "image_kernel_dim must be >= 0"),
    (("-m", "hparams_search=two_tower", "hydra.sweeper.n_trials=1", "objective=val/auc@20"),
     "objective 'val/auc@20' is not a metric validation logs"),
])
def test_bad_history_loss_and_objective_settings_exit_2_on_one_line(
        untimed: Path, tmp_path: Path, overrides: tuple[str, ...], message: str) -> None:
    proc = _cli(untimed, tmp_path, *overrides)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("runs/**/checkpoints/*.ckpt"))  # nothing half-written
