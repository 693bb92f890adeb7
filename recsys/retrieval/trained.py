"""A trained model reloaded from its ``recsys-train`` checkpoint: the training side of the one
converter (:mod:`recsys.retrieval.converter`), for retrieval, export and explanations.

``load_trained(ckpt)`` rebuilds the datamodule's feature tables from the dataset (and image
features) named in the checkpoint's config, refuses a dataset or config that no longer matches,
and loads the weights. ``similarity`` is the model's: ``"cosine"`` for normalised towers (equal to
the dot product of the returned vectors), ``"dot"`` for unnormalised ones. Imported lazily:
retrieval's other modules (and serving) do not load the training stack.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from recsys.errors import ModelError
from recsys.models.inputs import ItemInputs, UserInputs
from recsys.models.two_tower import TwoTowerModel
from recsys.training.checkpoint import read_checkpoint, stored_signature
from recsys.training.datamodule import RecsysDataModule
from recsys.training.pixels import encode_item_images
from recsys.training.store import (
    FeatureStore,
    encode_history_table,
    encode_items,
    encode_users,
    history_vectors,
)


@dataclass
class TrainedModel:
    """A trained two-tower model with its feature store, in eval mode on ``device``."""

    net: TwoTowerModel
    store: FeatureStore
    config: dict[str, Any]
    dataset_dir: Path
    checkpoint: Path
    device: torch.device
    similarity: str = "cosine"

    @property
    def dim(self) -> int:
        return self.net.dim

    @torch.no_grad()
    def item_embeddings(self, batch_size: int = 8192) -> np.ndarray:
        """Vectors of every item, float32 [n_items, dim], rows aligned to item_idx."""
        return encode_items(self.net, self.store, batch_size).cpu().numpy()

    @torch.no_grad()
    def user_embeddings(self, user_idx: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Vectors of ``user_idx`` users (history: see :func:`load_trained`)."""
        chunks = self._chunks(np.asarray(user_idx), batch_size)
        for idx in chunks:
            self._check_users(idx)
        table = encode_history_table(self.net, self.store, batch_size)
        out = [encode_users(self.net, self.store, idx, "test", table).float().cpu()
               for idx in chunks]
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @property
    def signals(self) -> tuple[str, ...]:
        """Signals the model reads, of ``behaviour`` (history), ``image`` (product image) and
        ``social`` (social images): what :meth:`ablated_user_embeddings` and
        :meth:`ablated_item_embeddings` can remove."""
        user, item = self.net.user_tower.block_names, self.net.item_tower.block_names
        return tuple(name for name, present in (("behaviour", "behaviour" in user),
                                                ("image", "product_image" in item),
                                                ("social", "social_image" in user)) if present)

    @torch.no_grad()
    def ablated_user_embeddings(self, user_idx: np.ndarray, drop: Collection[str],
                                batch_size: int = 8192) -> np.ndarray:
        """User vectors with the ``drop`` signals (``behaviour``, ``social``) removed from the
        inputs (empty history, no social image), as :meth:`user_embeddings` otherwise."""
        table = encode_history_table(self.net, self.store, batch_size)
        out = []
        for idx in self._chunks(np.asarray(user_idx), batch_size):
            self._check_users(idx)
            u_in = _drop_user_signals(self.store.user_inputs(idx), drop)
            hist = history_vectors(self.net, self.store, u_in.hist_items, table)
            out.append(self.net.user(u_in, hist).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def ablated_item_embeddings(self, drop: Collection[str], batch_size: int = 8192) -> np.ndarray:
        """Item vectors with the ``drop`` signals (``image``) removed (no product image)."""
        out = []
        for s in range(0, self.store.n_items, batch_size):
            rows = torch.arange(s, min(s + batch_size, self.store.n_items), device=self.device)
            i_in = self.store.item_inputs(rows)
            if "image" in drop:
                i_in = i_in._replace(image_mask=torch.zeros_like(i_in.image_mask))
            out.append(self.net.item(i_in).float().cpu())
        return torch.cat(out).numpy()

    def encode_user_features(self, user_idx: np.ndarray) -> dict[str, Tensor]:
        """The tensors :meth:`user_tower_for_export` takes, in order: ``ids`` [B] hashed id
        bucket (0 = cold user), ``cat`` [B, Fc] category indices, ``num`` [B, Fn] standardised
        numbers, ``hist_items`` [B, L] item_idx + 1 of the last purchases (0 = none),
        ``hist_age`` [B, L] log1p(days since the purchase), ``social`` [B, M, D] social-image
        features and ``social_mask`` [B, M] (False without image or consent)."""
        idx = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=self.device)
        self._check_users(idx)
        return dict(self.store.user_inputs(idx)._asdict())

    def user_tower_for_export(self) -> nn.Module:
        """The user tower (eval mode, frozen CPU copy), TorchScript-able with ``torch.jit.script``:
        ``forward(ids, cat, num, hist_items, hist_age, social, social_mask) -> [B, dim]``; a
        shared history reads a frozen table of every item's history representation."""
        import copy

        table = encode_history_table(self.net, self.store)
        tower = self.net.user_tower_with_table(
            torch.zeros(0, 1) if table is None else table.cpu())
        return copy.deepcopy(tower).cpu().eval().requires_grad_(False)

    @torch.no_grad()
    def signal_contributions(self, user_idx: np.ndarray, item_idx: np.ndarray
                             ) -> dict[str, np.ndarray]:
        """Cosine score of each (user, item) pair and, per signal the model uses, how much the
        score drops when that input is removed (history, product image, social images)."""
        users = torch.as_tensor(np.asarray(user_idx, dtype=np.int64), device=self.device)
        items = torch.as_tensor(np.asarray(item_idx, dtype=np.int64), device=self.device)
        if users.shape != items.shape:
            raise ModelError("user_idx and item_idx must have the same length")
        self._check_users(users)
        u_in, i_in = self.store.user_inputs(users), self.store.item_inputs(items)
        full = self._score(u_in, i_in)
        ablations: dict[str, Callable[[], tuple[UserInputs, ItemInputs]]] = {}
        if "behaviour" in self.net.user_tower.block_names:
            ablations["behaviour"] = lambda: (
                u_in._replace(hist_items=torch.zeros_like(u_in.hist_items)), i_in)
        if "product_image" in self.net.item_tower.block_names:
            ablations["product_image"] = lambda: (
                u_in, i_in._replace(image_mask=torch.zeros_like(i_in.image_mask)))
        if "social_image" in self.net.user_tower.block_names:
            ablations["social_image"] = lambda: (
                u_in._replace(social_mask=torch.zeros_like(u_in.social_mask)), i_in)
        out = {"score": full.cpu().numpy()}
        for name, ablate in ablations.items():
            out[name] = (full - self._score(*ablate())).cpu().numpy()
        return out

    def _score(self, users: UserInputs, items: ItemInputs) -> Tensor:
        table = encode_history_table(self.net, self.store)
        hist = history_vectors(self.net, self.store, users.hist_items, table)
        return (self.net.user(users, hist).float() * self.net.item(items).float()).sum(-1)

    def _chunks(self, idx: np.ndarray, size: int) -> list[Tensor]:
        t = torch.as_tensor(idx.astype(np.int64), device=self.device)
        return list(torch.split(t, size))

    def _check_users(self, users: Tensor) -> None:
        n = int(self.store.user_bucket.shape[0])
        if len(users) and (int(users.min()) < 0 or int(users.max()) >= n):
            raise ModelError(f"user_idx must be in 0..{n - 1}")


def _drop_user_signals(inputs: UserInputs, drop: Collection[str]) -> UserInputs:
    if "behaviour" in drop:
        inputs = inputs._replace(hist_items=torch.zeros_like(inputs.hist_items))
    if "social" in drop:
        inputs = inputs._replace(social_mask=torch.zeros_like(inputs.social_mask))
    return inputs


def load_trained(ckpt_path: Path | str, device: str = "cpu",
                 history_splits: Sequence[str] | None = None) -> TrainedModel:
    """Rebuild a trained model from a checkpoint written by ``recsys-train``. User vectors read
    the history of the checkpoint's ``datamodule.eval_history.test`` (train + val by default),
    or the positives of ``history_splits`` when given (an evaluation's history)."""
    from recsys.training.train import build_datamodule, build_model

    path = Path(ckpt_path)
    ckpt = read_checkpoint(path)
    signature = stored_signature(ckpt, path)
    config = ckpt["hyper_parameters"].get("run_config")
    if not isinstance(config, dict):
        raise ModelError("checkpoint lacks its training config", file=str(path))
    cfg = OmegaConf.create(config)
    if history_splits is not None:
        history = dict(cfg.datamodule.get("eval_history") or {})
        cfg.datamodule.eval_history = {**history, "test": list(history_splits)}
    dm: RecsysDataModule = build_datamodule(cfg)
    net, store, now = build_model(cfg, dm)
    if now != signature:
        raise ModelError("the dataset or image features changed since this checkpoint was "
                         "trained (feature layout or data fingerprint differ); retrain",
                         file=str(path))
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(f"weights do not fit the model: {err}", file=str(path)) from None
    dev = torch.device(device)
    net.to(dev).eval()
    store.to(dev)
    if net.image_encoder is not None:
        encode_item_images(net.image_encoder, dm.catalogue_pixel_loader(), store.item_image,
                           store.item_image_mask)
    return TrainedModel(net=net, store=store, config=config, dataset_dir=dm.dataset_dir,
                        checkpoint=path, device=dev, similarity=net.similarity)


USER_ID_TABLE = "net.user_tower.ids.table.weight"


def user_id_bucket(user_id: str, n_rows: int) -> int:
    """The id-embedding row of a user with a history (as the feature tables hash it:
    :func:`recsys.training.tables` buckets ``user_id`` into rows 1..n_rows-1; 0 is the cold row)."""
    hashed = pd.util.hash_pandas_object(pd.Series([str(user_id)]), index=False).to_numpy()
    return int(hashed[0] % np.uint64(max(n_rows - 1, 1))) + 1


def reset_user_id_row(path: Path, user_id: str, data_fingerprint: str | None) -> int | None:
    """Zero the id-embedding row of ``user_id`` (its stored id, the pseudonym) in a
    ``recsys-train`` checkpoint of the dataset ``data_fingerprint``, with the optimizer state of
    that row, rewritten atomically. Returns the row, or None when the checkpoint belongs to
    another dataset or has no id embedding. The row is a hash bucket: other users hashed to it
    lose their id signal as well."""
    ckpt = read_checkpoint(path)
    if stored_signature(ckpt, path).get("data_fingerprint") != data_fingerprint:
        return None
    table = ckpt["state_dict"].get(USER_ID_TABLE)
    if table is None:
        return None
    row = user_id_bucket(user_id, int(table.shape[0]))
    table[row] = 0
    for opt in ckpt.get("optimizer_states") or []:
        for state in (opt.get("state") or {}).values():
            for value in state.values():
                if isinstance(value, Tensor) and value.shape == table.shape:
                    value[row] = 0
    tmp = path.with_name(f".{path.name}.erase.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return row
