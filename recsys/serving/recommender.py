"""Load a serving bundle and recommend: known users, new users from features, cold users."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

import recsys
from recsys.errors import BundleError, ConfigError, DataError
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.similarity import prepare
from recsys.retrieval.topk import EMPTY, check_k, exclusion_rows, mask_scores, select_top_k
from recsys.serving import bundle as B
from recsys.serving import torchscript
from recsys.serving.user_features import UserFeatureEncoder

UserQuery = str | Mapping[str, Any]
Contributions = Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]]
UNKNOWN_USER = ("error", "cold")
SIGNALS = ("behaviour", "image", "social")
# names a model may give each signal in ``signal_contributions``
SIGNAL_KEYS = {"behaviour": ("behaviour", "behaviour_score"),
               "image": ("product_image", "image", "image_score"),
               "social": ("social_image", "social", "social_score")}


class Recommender:
    """Top-K recommendations from a verified bundle.

    ``unknown_user`` decides what an unknown user id gets: ``"error"`` (a DataError) or
    ``"cold"`` (the user tower on empty features, or the popularity ranking without a tower).
    ``contributions`` (e.g. ``TrainedModel.signal_contributions``) fills the per-signal scores
    of :meth:`candidates`; without it they are 0. ``pseudonym`` maps an original customer id
    to the keyed pseudonym ``recsys-data`` stored (``preprocess.privacy``), so users can be asked
    for by the id in the source file; messages show the id as given, never its pseudonym.
    """

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        index: ItemIndex,
        items: pd.DataFrame,
        user_ids: np.ndarray,
        user_vectors: np.ndarray,
        history: sp.csr_matrix,
        popularity: np.ndarray,
        tower: torch.jit.ScriptModule | None = None,
        encoder: UserFeatureEncoder | None = None,
        unknown_user: str = "error",
        contributions: Contributions | None = None,
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.index = index
        self.items = items
        self.user_vectors = user_vectors
        self.history = history
        self.popularity = popularity.astype(np.float32)
        self.tower = tower
        self.encoder = encoder
        self.unknown_user = _check_mode(unknown_user)
        self.contributions = contributions
        self.pseudonym = pseudonym
        self._user_row = {str(u): i for i, u in enumerate(user_ids)}

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        unknown_user: str = "error",
        contributions: Contributions | None = None,
        pseudonym: Callable[[str], str] | None = None,
    ) -> Recommender:
        """Verify checksums and compatibility, then load every part of the bundle."""
        root = Path(path)
        manifest = B.verify(root, recsys.__version__)
        try:
            index = ItemIndex.from_bytes((root / B.INDEX).read_bytes(),
                                         manifest["index"]["factory"],
                                         manifest["index"]["params"])
            items = pd.read_parquet(root / B.ITEMS)
            users = pd.read_parquet(root / B.USERS)
            vectors = np.load(root / B.USER_EMBEDDINGS, allow_pickle=False)
            history = sp.load_npz(root / B.HISTORY).tocsr()
            popularity = np.load(root / B.POPULARITY, allow_pickle=False)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise BundleError(f"unreadable bundle part ({err})", file=str(root)) from None
        tower, encoder = None, None
        if manifest.get("user_tower"):
            try:
                tower = torchscript.load(root / B.USER_TOWER)
                encoder = UserFeatureEncoder.from_dict(
                    json.loads((root / B.USER_ENCODER).read_text()), items["item_id"].tolist())
            except Exception as err:  # TorchScript and JSON raise many types
                raise BundleError(f"unreadable user tower ({err})", file=str(root)) from None
        _check_shapes(root, manifest, index, items, users, vectors, history, popularity)
        return cls(root, manifest, index, items, users["user_id"].astype(str).to_numpy(),
                   vectors, history, popularity, tower, encoder, unknown_user, contributions,
                   pseudonym)

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def user_idx(self, user_id: str) -> int | None:
        """Row of a known user (its user_idx), by stored id or by the pseudonym of an original
        id; None if unknown."""
        row = self._user_row.get(str(user_id))
        if row is None and self.pseudonym is not None:
            row = self._user_row.get(self.pseudonym(str(user_id)))
        return row

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Index ranking for known users (the evaluator's ranker protocol)."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        return self.index.search(self.user_vectors[user_idx], k,
                                 excluded=exclusion_rows(exclude, user_idx))[1]

    def embed(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Vectors of users described by features, through the exported user tower."""
        if self.tower is None or self.encoder is None:
            raise ConfigError("this bundle has no user tower: new users cannot be embedded "
                              "from features", column="user_tower")
        with torch.inference_mode():
            out = self.tower(*self.encoder.encode(records)).float().numpy()
        return prepare(out, str(self.manifest["similarity"]))

    def recommend(
        self,
        user: UserQuery,
        *,
        k: int,
        exclude_purchased: bool = True,
        unknown_user: str | None = None,
    ) -> pd.DataFrame:
        """Top ``k`` items with their attributes for a user id or a features mapping."""
        frame = self.candidates([user], k, exclude_purchased, unknown_user)
        frame = frame.drop(columns=["user_idx", *[f"{s}_score" for s in SIGNALS]])
        return frame.merge(self.items.drop(columns="item_id"), on="item_idx", how="left")

    def candidates(
        self,
        users: Sequence[UserQuery],
        k: int,
        exclude_purchased: bool = True,
        unknown_user: str | None = None,
    ) -> pd.DataFrame:
        """Long frame of ``k`` candidates per user for the marketing rules: user_idx (-1 for a
        user unknown to the bundle), item_idx, item_id, score, rank (1 = best) and the
        behaviour / image / social contributions."""
        k = check_k(k, self.n_items)
        mode = _check_mode(unknown_user or self.unknown_user)
        idx, queries, pop_rows, excluded = self._resolve(users, mode, exclude_purchased)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        ids = np.full((len(users), k), EMPTY, dtype=np.int64)
        vec_rows = np.flatnonzero(~pop_rows)
        if len(vec_rows):
            sub = excluded[vec_rows] if excluded is not None else None
            scores[vec_rows], ids[vec_rows] = self.index.search(queries[vec_rows], k, excluded=sub)
        if pop_rows.any():
            rows = np.flatnonzero(pop_rows)
            pop = torch.from_numpy(self.popularity).expand(len(rows), -1).clone()
            mask_scores(pop, excluded[rows] if excluded is not None else None)
            scores[rows], ids[rows] = select_top_k(pop, k)
        return self._frame(idx, ids, scores)

    def _resolve(
        self, users: Sequence[UserQuery], mode: str, exclude_purchased: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix | None]:
        n, dim = len(users), int(self.manifest["embedding_dim"])
        idx = np.full(n, -1, dtype=np.int64)
        queries = np.zeros((n, dim), dtype=np.float32)
        pop_rows = np.zeros(n, dtype=bool)
        bought: list[list[int]] = [[] for _ in range(n)]
        new: list[tuple[int, Mapping[str, Any]]] = []
        for i, user in enumerate(users):
            if isinstance(user, Mapping):
                new.append((i, user))
                if self.encoder is not None:
                    bought[i] = self.encoder.history_items(user)
                continue
            row = self.user_idx(user)
            if row is not None:
                idx[i] = row
                queries[i] = self.user_vectors[row]
                bought[i] = self.history[row].indices.tolist()
            elif mode == "error":
                how = " (neither as stored nor pseudonymised)" if self.pseudonym else ""
                raise DataError(f"unknown user id {user!r}{how}; use unknown_user=cold to "
                                f"recommend for a new user", column="user_id")
            elif self.tower is not None:
                new.append((i, {}))
            else:
                pop_rows[i] = True
        if new:
            queries[[i for i, _ in new]] = self.embed([rec for _, rec in new])
        excluded = None
        if exclude_purchased and any(bought):
            rows = np.repeat(np.arange(n), [len(b) for b in bought])
            cols = np.concatenate([np.asarray(b, np.int64) for b in bought])
            excluded = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                                     shape=(n, self.n_items))
        return idx, queries, pop_rows, excluded

    def _frame(self, idx: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        n, k = ids.shape
        frame = pd.DataFrame({
            "user_idx": np.repeat(idx, k),
            "item_idx": ids.ravel(),
            "score": scores.ravel(),
            "rank": np.tile(np.arange(1, k + 1), n),
        })
        frame = frame[frame["item_idx"] >= 0].reset_index(drop=True)
        frame.insert(2, "item_id", self.items["item_id"].to_numpy()[frame["item_idx"]])
        for signal in SIGNALS:
            frame[f"{signal}_score"] = np.zeros(len(frame), dtype=np.float32)
        known = frame["user_idx"].to_numpy() >= 0
        if self.contributions is not None and known.any():
            parts = self.contributions(frame["user_idx"].to_numpy()[known],
                                       frame["item_idx"].to_numpy()[known])
            for signal in SIGNALS:
                value = next((parts[k] for k in SIGNAL_KEYS[signal] if k in parts), None)
                if value is not None:
                    frame.loc[known, f"{signal}_score"] = np.asarray(value, dtype=np.float32)
        return frame


def _check_mode(mode: str) -> str:
    if mode not in UNKNOWN_USER:
        raise ConfigError(f"unknown_user={mode!r} must be one of {', '.join(UNKNOWN_USER)}")
    return mode


def _check_shapes(
    root: Path,
    manifest: Mapping[str, Any],
    index: ItemIndex,
    items: pd.DataFrame,
    users: pd.DataFrame,
    vectors: np.ndarray,
    history: sp.csr_matrix,
    popularity: np.ndarray,
) -> None:
    """Parts of the bundle must agree with each other and with the manifest."""
    dim, n_items = manifest.get("embedding_dim"), manifest.get("n_items")
    problems = [
        (B.INDEX, index.metric != manifest.get("metric"),
         f"index metric {index.metric!r} differs from the manifest's {manifest.get('metric')!r}"),
        (B.INDEX, index.dim != dim or index.ntotal != n_items,
         f"index holds {index.ntotal} x {index.dim}, manifest says {n_items} x {dim}"),
        (B.ITEMS, len(items) != n_items, f"{len(items)} items for {n_items} indexed"),
        (B.USER_EMBEDDINGS, vectors.shape != (len(users), dim),
         f"user embeddings {vectors.shape} for {len(users)} users of dimension {dim}"),
        (B.HISTORY, history.shape != (len(users), n_items), f"history shape {history.shape}"),
        (B.POPULARITY, popularity.shape != (n_items,), f"popularity shape {popularity.shape}"),
    ]
    for name, bad, message in problems:
        if bad:
            raise BundleError(message, file=str(root / name))
