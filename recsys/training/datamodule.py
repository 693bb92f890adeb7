"""LightningDataModule over a processed dataset.

Batches carry indices only (training positions, evaluated users and their targets); features are
gathered on the device by :class:`~recsys.training.store.FeatureStore`, which keeps the loader
trivially cheap. Only CNN fine-tuning reads pixels, in worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from recsys.data import ProcessedDataset, load_dataset
from recsys.errors import ConfigError
from recsys.training.image_inputs import ImageArrays, load_image_arrays
from recsys.training.pixels import PixelReader, image_paths
from recsys.training.sampling import EpochBatchSampler
from recsys.training.tables import (
    EvalTargets,
    FeatureTables,
    build_tables,
    check_fit_splits,
    eval_targets,
)


class PositionBatches(Dataset[dict[str, Tensor]]):
    """Training batches: positions in the training sequence (+ pixels of their items)."""

    def __init__(self, seq_items: np.ndarray, pixels: PixelReader | None) -> None:
        self.seq_items, self.pixels = seq_items, pixels

    def __len__(self) -> int:
        return len(self.seq_items)

    def __getitem__(self, pos: np.ndarray) -> dict[str, Tensor]:
        batch = {"pos": torch.from_numpy(np.asarray(pos, dtype=np.int64))}
        if self.pixels is not None:
            batch["pixels"], batch["pixel_mask"] = self.pixels(self.seq_items[pos])
        return batch


class UserExampleBatches(Dataset[dict[str, Tensor]]):
    """Training batches of users under ``key``, with the example kind's settings: ``users``
    (``examples: user``; each user's positives split afresh on the device into a history and
    held-out targets, ``FeatureStore.split_users``) or ``seq_users`` (``examples: sequence``; the
    causal encoder reads each user's latest purchases once, every purchase a target,
    ``FeatureStore.sequence_targets``)."""

    def __init__(self, users: np.ndarray, key: str, **settings: float) -> None:
        self.users, self.key = users, key
        self.settings = {name: torch.tensor(value) for name, value in settings.items()}

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, rows: np.ndarray) -> dict[str, Tensor]:
        return {self.key: torch.from_numpy(self.users[np.asarray(rows, dtype=np.int64)]),
                **self.settings}


class UserBatches(Dataset[dict[str, Tensor]]):
    """Evaluation batches: users, and their target items as (row, item) pairs."""

    def __init__(self, targets: EvalTargets) -> None:
        self.targets = targets

    def __len__(self) -> int:
        return len(self.targets.users)

    def __getitem__(self, rows: np.ndarray) -> dict[str, Tensor]:
        t = self.targets
        starts, ends = t.offsets[rows], t.offsets[rows + 1]
        lengths = ends - starts
        flat = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        return {
            "users": torch.from_numpy(t.users[rows]),
            "target_rows": torch.from_numpy(np.repeat(np.arange(len(rows)), lengths)),
            "target_items": torch.from_numpy(t.items[flat.astype(np.int64)]),
        }


class ItemBatches(Dataset[dict[str, Tensor]]):
    """Catalogue batches with pixels, to encode every product image with the current CNN."""

    def __init__(self, n_items: int, pixels: PixelReader) -> None:
        self.n_items, self.pixels = n_items, pixels

    def __len__(self) -> int:
        return self.n_items

    def __getitem__(self, items: np.ndarray) -> dict[str, Tensor]:
        pixels, mask = self.pixels(np.asarray(items))
        return {"items": torch.from_numpy(np.asarray(items, dtype=np.int64)),
                "pixels": pixels, "pixel_mask": mask}


class RecsysDataModule(pl.LightningDataModule):
    """Train / val / test loaders over ``dataset_dir``; see the module doc."""

    def __init__(
        self,
        dataset_dir: str,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        pin_memory: bool,
        history_len: int,
        social_len: int,
        user_buckets: int,
        multi_hot_len: int,
        seed: int,
        drop_last: bool = True,
        image_features_dir: str | None = None,
        eval_history: Mapping[str, Sequence[str]] | None = None,
        examples: str = "position",
        keep_fraction: float = 0.5,
        fit_splits: Sequence[str] = ("train",),
        sequence_window: str = "latest",
        item_id_min_count: int = 1,
    ) -> None:
        super().__init__()
        if item_id_min_count < 1:
            raise ConfigError(f"datamodule.item_id_min_count must be >= 1 (training positives an "
                              f"item needs for its own id vector), got {item_id_min_count}",
                              column="item_id_min_count")
        self.item_id_min_count = int(item_id_min_count)
        if sequence_window not in ("latest", "random"):
            raise ConfigError(f"datamodule.sequence_window must be latest or random, got "
                              f"{sequence_window!r}", column="sequence_window")
        self.sequence_window = sequence_window
        if examples not in ("position", "user", "sequence"):
            raise ConfigError(f"datamodule.examples must be position, user or sequence, got "
                              f"{examples!r}", column="examples")
        if not 0.0 < keep_fraction < 1.0:
            raise ConfigError(f"datamodule.keep_fraction must lie in (0, 1), got {keep_fraction}",
                              column="keep_fraction")
        self.examples, self.keep_fraction = examples, float(keep_fraction)
        if history_len < 1:
            raise ConfigError(f"datamodule.history_len must be >= 1 (purchases the user tower "
                              f"reads), got {history_len}", column="history_len")
        self.dataset_dir = Path(dataset_dir)
        self.image_features_dir = Path(image_features_dir) if image_features_dir else None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.history_len, self.social_len = history_len, social_len
        self.user_buckets, self.multi_hot_len = user_buckets, multi_hot_len
        self.seed, self.drop_last = seed, drop_last
        self.eval_history = eval_history
        self.fit_splits = check_fit_splits(fit_splits)
        self.dataset: ProcessedDataset | None = None
        self.images: ImageArrays | None = None
        self.tables: FeatureTables | None = None
        self.targets: dict[str, EvalTargets] = {}
        self.train_pixels: PixelReader | None = None
        self.eval_pixels: PixelReader | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load the dataset and build the feature tables (once)."""
        if self.tables is not None:
            return
        self.dataset = ds = load_dataset(self.dataset_dir)
        if self.image_features_dir is not None:
            self.images = load_image_arrays(self.image_features_dir, len(ds.users), len(ds.items))
        self.tables = build_tables(ds, self.images, self.history_len, self.social_len,
                                   self.user_buckets, self.multi_hot_len, self.eval_history,
                                   self.fit_splits, self.item_id_min_count)
        for split in ("val", "test"):
            self.targets[split] = eval_targets(ds.split(split), len(ds.items))

    def enable_pixels(self, train: PixelReader, evaluation: PixelReader) -> None:
        """Read product-image pixels for CNN fine-tuning."""
        self.train_pixels, self.eval_pixels = train, evaluation

    def pixel_readers(self, transform_train: Any, transform_eval: Any, settings: Any,
                      image_size: int) -> tuple[PixelReader, PixelReader]:
        """Readers over this dataset's product images with the given transforms."""
        assert self.dataset is not None, "setup() first"
        paths = image_paths(self.dataset.items.sort_values("item_idx")["image_path"].tolist()) \
            if "image_path" in self.dataset.items else [None] * len(self.dataset.items)
        root = self.dataset.image_root
        return (PixelReader(root, paths, transform_train, settings, image_size),
                PixelReader(root, paths, transform_eval, settings, image_size))

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, dataset: Dataset[dict[str, Tensor]], sampler: EpochBatchSampler
                ) -> DataLoader[dict[str, Tensor]]:
        return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        assert self.tables is not None, "setup() first"
        rank, world = self._rank()
        dataset: Dataset[dict[str, Tensor]]
        if self.examples != "position" and self.train_pixels is not None:
            raise ConfigError(f"datamodule.examples={self.examples} does not read pixels; "
                              f"fine-tune the CNN with examples=position", column="examples")
        if self.examples == "user":
            # users with a history and at least one held-out target
            users = np.flatnonzero(np.diff(self.tables.user_offsets) >= 2)
            dataset = UserExampleBatches(users, "users", keep_fraction=self.keep_fraction)
            n = len(users)
        elif self.examples == "sequence":  # users with a training positive
            users = np.flatnonzero(np.diff(self.tables.user_offsets) >= 1)
            dataset = UserExampleBatches(users, "seq_users",
                                         random_end=self.sequence_window == "random")
            n = len(users)
        else:
            dataset = PositionBatches(self.tables.seq_items, self.train_pixels)
            n = self.tables.n_train
        drop_last = self.drop_last and n // world >= self.batch_size
        sampler = EpochBatchSampler(n, self.batch_size, shuffle=True, seed=self.seed,
                                    drop_last=drop_last, rank=rank, world_size=world)
        return self._loader(dataset, sampler)

    def _eval_loader(self, split: str) -> DataLoader[dict[str, Tensor]]:
        rank, world = self._rank()
        targets = self.targets[split]
        sampler = EpochBatchSampler(len(targets.users), self.eval_batch_size, shuffle=False,
                                    seed=self.seed, drop_last=False, rank=rank, world_size=world,
                                    equal_shards=False)
        return self._loader(UserBatches(targets), sampler)

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        return self._eval_loader("test")

    def catalogue_pixel_loader(self) -> DataLoader[dict[str, Tensor]]:
        """Every item with pixels (evaluation transform), for encoding the catalogue."""
        assert self.tables is not None and self.eval_pixels is not None
        sampler = EpochBatchSampler(self.tables.schema.n_items, self.eval_batch_size,
                                    shuffle=False, seed=0, drop_last=False)
        return DataLoader(ItemBatches(self.tables.schema.n_items, self.eval_pixels),
                          batch_size=None, sampler=sampler, num_workers=self.num_workers)
