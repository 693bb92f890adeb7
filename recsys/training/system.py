"""The LightningModule: sampled-softmax training and full-catalogue ranking evaluation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric

from recsys.errors import ConfigError, ModelError
from recsys.evaluation.metrics import METRIC_NAMES
from recsys.models.inputs import UserInputs
from recsys.models.losses import FullSquaredLoss, log_expected_count
from recsys.models.two_tower import TwoTowerModel
from recsys.training.gather import with_other_ranks
from recsys.training.pixels import encode_item_images
from recsys.training.ranking import RankingMetrics, seen_matrix, target_matrix
from recsys.training.sampling import sample_negatives
from recsys.training.store import (
    FeatureStore,
    encode_history_table,
    encode_items,
    encode_users,
    history_vectors,
)

SchedulerFactory = Callable[..., Any]

log = logging.getLogger(__name__)


class TwoTowerSystem(pl.LightningModule):
    """Trains ``net`` on batches of training positions gathered through ``store``.

    Each validation (and test) epoch ranks the whole catalogue for every evaluated user under
    the evaluation protocol: with ``exclude_history`` (the data config's rule) the user's history
    items (``recsys.data.schema.default_history`` of the split, train for validation) are
    excluded, as ``recsys-evaluate`` does; ties go to the lower item index, and
    ``<split>/{recall,ndcg,hitrate,mrr,map}@K`` come from the evaluator's metric code, overall
    and restricted to cold items (``..._cold``: targets without any training positive).
    """

    net: TwoTowerModel
    store: FeatureStore

    def __init__(
        self,
        net: TwoTowerModel,
        store: FeatureStore,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        k: int,
        exclude_history: bool,
        num_negatives: int,
        negative_distribution: str,
        signature: dict[str, Any],
        run_config: dict[str, Any],
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "store", "loss", "optimizer", "scheduler"])
        if num_negatives < 0 or negative_distribution not in ("uniform", "popularity"):
            raise ConfigError(
                f"negatives: count must be >= 0 and distribution uniform or popularity, got "
                f"{num_negatives}, {negative_distribution!r}", column="negatives")
        if not isinstance(exclude_history, bool):
            raise ConfigError(f"data.exclude_history must be true or false, got {exclude_history!r}",
                              column="exclude_history")
        self.full_catalogue = bool(getattr(loss, "full_catalogue", False))
        if self.full_catalogue and net.image_encoder is not None:
            raise ConfigError("a full-catalogue loss (model/loss=full_softmax or full_mse) encodes "
                              "the whole catalogue every step; it is not supported while "
                              "fine-tuning the CNN (use sampled_softmax)",
                              column="model.loss")
        max_items = int(getattr(loss, "max_items", 0))
        if self.full_catalogue and store.n_items > max_items:
            raise ConfigError(f"a full-catalogue loss: the catalogue has {store.n_items} items, "
                              f"above model.loss.max_items={max_items}; use sampled_softmax",
                              column="model.loss.max_items")
        if num_negatives and net.image_encoder is not None:
            raise ConfigError("extra negatives are not supported while fine-tuning the CNN; "
                              "set model.system.num_negatives=0", column="num_negatives")
        if isinstance(loss, FullSquaredLoss) and loss.mask_other_positives and not exclude_history:
            log.warning("model/loss=full_mse never fits the items a user already has, but this "
                        "data keeps them in rankings (data.exclude_history: false): their scores "
                        "are not learned; the loss suits protocols that exclude them")
        self.net, self.store, self.loss = net, store, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        optimizer(module=net)  # a bad optimizer setting fails here, before any training
        self.k, self.num_negatives, self.negative_distribution = k, num_negatives, negative_distribution
        self.exclude_history = exclude_history
        self.metrics = nn.ModuleDict({f"{split}_{subset}": RankingMetrics(k)
                                      for split in ("val", "test") for subset in ("all", "cold")})
        self.epoch_loss = MeanMetric()
        self._catalogue: Tensor | None = None
        self._history_table: Tensor | None = None
        self.step_examples = 0

    # ---------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if "users" in batch:
            return self._user_example_step(batch["users"], float(batch["keep_fraction"]))
        if "seq_users" in batch:
            return self._sequence_step(batch["seq_users"], bool(batch["random_end"]))
        users, items = self.store.train_inputs(batch["pos"])
        if self.full_catalogue:
            return self._full_catalogue_step(batch["pos"], users, items)
        item_inputs = self.store.item_inputs(items)
        if "pixels" in batch:
            item_inputs = item_inputs._replace(image_mask=batch["pixel_mask"])
        u = self.net.user(users, history_vectors(self.net, self.store, users.hist_items))
        return self._sampled_step(u, items, self.net.item(item_inputs, batch.get("pixels")))

    def _sequence_step(self, users: Tensor, random_end: bool) -> Tensor:
        """One-pass sequence examples (``datamodule.examples: sequence``): the causal encoder
        reads each user's latest purchases once and each of them is a target, its user vector
        the encoder's state just before its basket (an empty history for the first basket)."""
        inputs, rows, at, pos = self.store.sequence_targets(users, random_end)
        items = self.store.seq_items[pos]
        if len(pos) == 0:  # every window a single basket: nothing to learn from this batch
            return self._zero_loss()
        if self.full_catalogue:
            catalogue = self.net.item(self.store.item_inputs(
                torch.arange(self.store.n_items, device=users.device)))
            table = catalogue if self.net.history_features is None else None
            u = self.net.user_sequence(inputs, history_vectors(
                self.net, self.store, inputs.hist_items, table), rows, at)
            others = seen_matrix(users[rows], self.store.user_offsets, self.store.seq_items,
                                 self.store.n_items)
            return self._log_loss(self.loss(u, catalogue, items, self.net.temperature, others,
                                            self.store.item_prob == 0), len(items))
        u = self.net.user_sequence(inputs, history_vectors(self.net, self.store,
                                                           inputs.hist_items), rows, at)
        return self._sampled_step(u, items, self.net.item(self.store.item_inputs(items)))

    def _zero_loss(self) -> Tensor:
        """A zero loss tied to the trained parameters (a step that updates nothing), unlogged."""
        return torch.stack([p.sum() for p in self.net.parameters() if p.requires_grad]).sum() * 0.0

    def _sampled_step(self, u: Tensor, items: Tensor, v: Tensor) -> Tensor:
        """Sampled softmax of user vectors ``u`` against their positives ``v`` (item idx
        ``items``), the other rows' positives and any sampled negatives, logQ-corrected."""
        neg = neg_ids = None
        neg_prob = None
        if self.num_negatives:
            neg_ids, neg_prob = sample_negatives(self.num_negatives, self.negative_distribution,
                                                 self.store.item_prob, self.store.item_cdf, None)
            neg = self.net.item(self.store.item_inputs(neg_ids))
        # under DDP the other ranks' positives join the candidates (recsys.training.gather)
        neg, neg_ids, global_batch = with_other_ranks(v, items, neg, neg_ids,
                                                      getattr(self.loss, "in_batch", True))
        cand = items if neg_ids is None else torch.cat([items, neg_ids])
        logq = log_expected_count(self.store.item_prob[cand],
                                  None if neg_prob is None else neg_prob[cand],
                                  global_batch, self.num_negatives)
        loss = self.loss(u, v, items, self.net.temperature, logq, neg, neg_ids)
        return self._log_loss(loss, len(items))

    def _full_catalogue_step(self, pos: Tensor, users: UserInputs, items: Tensor) -> Tensor:
        """Full softmax: the whole catalogue is encoded once per step; the batch users' other
        training positives are masked (``model/loss=full_softmax`` or ``full_mse``)."""
        u, catalogue = self._users_and_catalogue(users)
        others = seen_matrix(self.store.seq_users[pos], self.store.user_offsets,
                             self.store.seq_items, self.store.n_items)
        return self._log_loss(self.loss(u, catalogue, items, self.net.temperature, others,
                                        self.store.item_prob == 0), len(items))

    def _user_example_step(self, users: Tensor, keep_fraction: float) -> Tensor:
        """User examples (``datamodule.examples: user``): a random part of each user's positives
        is the history, the held-out rest the targets, all scored against the whole catalogue."""
        if not self.full_catalogue:
            raise ConfigError("datamodule.examples=user needs a full-catalogue loss "
                              "(model/loss=full_softmax or full_mse)",
                              column="datamodule.examples")
        inputs, targets, history = self.store.split_users(users, keep_fraction)
        u, catalogue = self._users_and_catalogue(inputs)
        loss = self.loss(u, catalogue, targets, self.net.temperature, history,
                         self.store.item_prob == 0)
        return self._log_loss(loss, len(users))

    def _users_and_catalogue(self, inputs: UserInputs) -> tuple[Tensor, Tensor]:
        """User vectors and every item's vector, the catalogue encoded once (with gradients);
        a shared history reading every item block reads those same vectors."""
        device = inputs.hist_items.device
        catalogue = self.net.item(self.store.item_inputs(
            torch.arange(self.store.n_items, device=device)))
        table = catalogue if self.net.history_features is None else None
        u = self.net.user(inputs, history_vectors(self.net, self.store, inputs.hist_items, table))
        return u, catalogue

    def _log_loss(self, loss: Tensor, batch_size: int) -> Tensor:
        if not torch.isfinite(loss):
            raise ModelError(self._nan_message(loss))
        self.step_examples = batch_size  # the examples of this step (SamplesPerSecond)
        self.epoch_loss.update(loss.detach())  # reduced over ranks once, at the epoch's end
        self.log("train/loss_epoch", self.epoch_loss, on_step=False, on_epoch=True)
        # step values only on the steps the logger writes: self.log costs ~5% of a small step
        trainer = self._trainer
        every = int(getattr(trainer, "log_every_n_steps", 1) or 1) if trainer is not None else 1
        if self.global_step % every == 0:
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True,
                     batch_size=batch_size)
            self.log("train/temperature", self.net.temperature.detach(), on_step=True,
                     on_epoch=False, batch_size=batch_size)
        return loss

    def _nan_message(self, loss: Tensor) -> str:
        last = ""
        for callback in getattr(self.trainer, "checkpoint_callbacks", []):
            dirpath = getattr(callback, "dirpath", None)
            if dirpath and (Path(dirpath) / "last.ckpt").is_file():
                last = str(Path(dirpath) / "last.ckpt")
                break
            last = last or getattr(callback, "best_model_path", "")
        kept = f"the last good checkpoint is kept at {last}" if last else \
            "no checkpoint had been written yet"
        return (f"training loss became {loss.item()} at epoch {self.current_epoch}, "
                f"step {self.global_step}; training stopped and {kept}. Lower the learning "
                f"rate or check the input features for extreme values")

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(module=self.net)
        if self.scheduler_factory is None:
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def encode_catalogue(self, batch_size: int = 8192) -> Tensor:
        """Vectors of every item [n_items, dim] (image features from the CNN if fine-tuning)."""
        if self.net.image_encoder is not None:
            self._encode_catalogue_images()
        return encode_items(self.net, self.store, batch_size)

    def _encode_catalogue_images(self) -> None:
        datamodule: Any = getattr(self.trainer, "datamodule", None)
        assert self.net.image_encoder is not None and datamodule is not None
        encode_item_images(self.net.image_encoder, datamodule.catalogue_pixel_loader(),
                           self.store.item_image, self.store.item_image_mask)

    def _metric(self, name: str) -> RankingMetrics:
        metric = self.metrics[name]
        assert isinstance(metric, RankingMetrics)
        return metric

    def _eval_start(self) -> None:
        self._catalogue = self.encode_catalogue()
        # a shared history reading every item block reads the catalogue's vectors themselves
        self._history_table = self._catalogue if self.net.history_features is None \
            else encode_history_table(self.net, self.store)

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def _eval_step(self, batch: dict[str, Tensor], split: str) -> None:
        assert self._catalogue is not None
        users = batch["users"]
        u = encode_users(self.net, self.store, users, split, self._history_table).float()
        scores = u @ self._catalogue.T
        n_items = self.store.n_items
        if self.exclude_history:
            hist_items, _, hist_offsets = self.store.history_arrays(split)
            scores = scores.masked_fill(seen_matrix(users, hist_offsets, hist_items, n_items), float("-inf"))
        targets = target_matrix(batch["target_rows"], batch["target_items"], len(users), n_items)
        self._metric(f"{split}_all").update(scores, targets)
        cold = self.store.item_bucket == 0
        self._metric(f"{split}_cold").update(scores, targets & cold.unsqueeze(0))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_end(self, split: str) -> None:
        for subset, suffix in (("all", ""), ("cold", "_cold")):
            metric = self._metric(f"{split}_{subset}")
            values = metric.compute()
            metric.reset()
            # values are already reduced over ranks; sync_dist only keeps Lightning quiet
            for name in METRIC_NAMES:
                self.log(f"{split}/{name}@{self.k}{suffix}", values[name],
                         prog_bar=name == "recall" and not suffix, sync_dist=True)
            self.log(f"{split}/users{suffix}", values["users"], sync_dist=True)
        self._catalogue = self._history_table = None

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")
