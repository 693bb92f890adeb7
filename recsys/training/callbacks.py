"""Training callbacks of this package (the stock ones come from Lightning via config)."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch


class SamplesPerSecond(pl.Callback):
    """Logs ``train/samples_per_s`` (all ranks together) from the first to the last training
    batch of each epoch (validation excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self._start = self._last = 0.0
        self._samples = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._samples = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._samples += int(batch["pos" if "pos" in batch else "users"].shape[0])
        if batch_idx % 50 == 0 and pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # keep the clock honest, rarely
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        elapsed = max(self._last - self._start, 1e-9)
        rate = self._samples * trainer.world_size / elapsed
        pl_module.log("train/samples_per_s", rate, sync_dist=True)
