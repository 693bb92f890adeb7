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
        # training examples of the step (targets, whatever the batch indexes: positions, users)
        self._samples += int(getattr(pl_module, "step_examples", 0))
        if batch_idx % 50 == 0 and pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # keep the clock honest, rarely
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        elapsed = max(self._last - self._start, 1e-9)
        rate = self._samples * trainer.world_size / elapsed
        pl_module.log("train/samples_per_s", rate, sync_dist=True)


class ObjectiveHistory(pl.Callback):
    """Records the validation ``objective`` after every validation epoch (``values[i]``: the
    value after epoch ``epochs[i]``), for choosing a refit's length (``refit_best``)."""

    def __init__(self, objective: str) -> None:
        super().__init__()
        self.objective = objective
        self.epochs: list[int] = []
        self.values: list[float] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # not on_validation_epoch_end: callbacks run that hook before the module logs the epoch
        value = trainer.callback_metrics.get(self.objective)
        if value is not None and not trainer.sanity_checking:
            self.epochs.append(int(trainer.current_epoch))
            self.values.append(float(value))

    def smoothed_best_epochs(self, window: int) -> int | None:
        """Epochs to train for: through the epoch whose centred ``window``-epoch moving
        average of the objective is highest (a single noisy peak does not decide it)."""
        if not self.values:
            return None
        half = max(int(window), 1) // 2
        means = [sum(self.values[max(0, i - half): i + half + 1])
                 / len(self.values[max(0, i - half): i + half + 1])
                 for i in range(len(self.values))]
        best = max(range(len(means)), key=lambda i: (means[i], -i))
        return self.epochs[best] + 1
