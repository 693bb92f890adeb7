"""Load a serving bundle and recommend: known users, new users from features, cold users."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

import recsys
from recsys.errors import BundleError, ConfigError, DataError
from recsys.retrieval import torchscript
from recsys.retrieval.converter import Ablations
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.similarity import prepare
from recsys.retrieval.topk import (
    EMPTY,
    check_k,
    exact_top_k,
    exclusion_rows,
    mask_scores,
    select_top_k,
)
from recsys.retrieval.user_features import UserFeatureEncoder
from recsys.serving import bundle as B
from recsys.serving.explain import SIGNALS, contributions

UserQuery = str | Mapping[str, Any]
UNKNOWN_USER = ("error", "cold")
PARTS = ("base", *SIGNALS)  # the explanation's parts, columns ``<part>_score`` of candidates


class UnknownIdError(DataError):
    """A user or item id the bundle does not know."""


class Recommender:
    """Top-K recommendations from a verified bundle.

    ``unknown_user`` decides what an unknown user id gets: ``"error"`` (an UnknownIdError) or
    ``"cold"`` (the user tower on empty features, or the popularity ranking without a tower).
    Candidates carry additive explanations (:mod:`recsys.serving.explain`) from the bundle's
    ablated vectors: ``base + behaviour + image + social == score``. ``pseudonym`` maps an
    original customer id to the keyed pseudonym ``recsys-data`` stored
    (``preprocess.privacy``), so users can be asked for by the id in the source file; messages
    show the id as given, never its pseudonym.
    """

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        index: ItemIndex,
        items: pd.DataFrame,
        user_ids: np.ndarray,
        user_vectors: np.ndarray,
        item_vectors: np.ndarray,
        history: sp.csr_matrix,
        popularity: np.ndarray,
        tower: torch.jit.ScriptModule | None = None,
        encoder: UserFeatureEncoder | None = None,
        ablations: Ablations | None = None,
        unknown_user: str = "error",
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.index = index
        self.items = items
        self.user_ids = user_ids
        self.user_vectors = user_vectors
        self.item_vectors = item_vectors
        self.history = history
        self.popularity = popularity.astype(np.float32)
        self.tower = tower
        self.encoder = encoder
        self.ablations = ablations
        self.unknown_user = _check_mode(unknown_user)
        self.pseudonym = pseudonym
        self._user_row = {str(u): i for i, u in enumerate(user_ids)}
        self._item_ids = items["item_id"].astype(str).to_numpy(dtype=object)
        self._item_row = {v: i for i, v in enumerate(self._item_ids)}

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        unknown_user: str = "error",
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
            item_vectors = np.load(root / B.ITEM_EMBEDDINGS, allow_pickle=False)
            history = sp.load_npz(root / B.HISTORY).tocsr()
            popularity = np.load(root / B.POPULARITY, allow_pickle=False)
            ablations = None
            if B.ABLATIONS in manifest["files"]:
                with np.load(root / B.ABLATIONS, allow_pickle=False) as parts:
                    ablations = Ablations(parts["users"], parts["items"])
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
        _check_shapes(root, manifest, index, items, users, vectors, item_vectors, history,
                      popularity, ablations)
        return cls(root, manifest, index, items, users["user_id"].astype(str).to_numpy(),
                   vectors, item_vectors, history, popularity, tower, encoder, ablations,
                   unknown_user, pseudonym)

    def warm_up(self) -> None:
        """Serve one request of each kind: the first calls of the TorchScript tower optimise
        it (about 120 ms on the bench bundle) and the id lookups are built on first use. The
        service does this before swapping a bundle in, so no request waits for it."""
        k = min(10, self.n_items)
        if len(self.user_ids):
            self.rank([str(self.user_ids[0])], k)
        if self.tower is not None:
            for _ in range(2):  # the profiling executor optimises on the second call
                self.rank([{"history": [str(self._item_ids[0])]}], k)

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

    def item_idx(self, item_id: str) -> int:
        """Row of a catalogue item; an UnknownIdError if the bundle does not hold it."""
        row = self._item_row.get(str(item_id))
        if row is None:
            raise UnknownIdError(f"unknown item id {item_id!r}", column="item_id")
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
        return self.embed_with_and_without_history(records)[0]

    def embed_with_and_without_history(self, records: Sequence[Mapping[str, Any]]
                                       ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of users described by features and the same with an empty history (what
        the behaviour signal adds), in one pass of the exported user tower."""
        if self.tower is None or self.encoder is None:
            raise ConfigError("this bundle has no user tower: new users cannot be embedded "
                              "from features", column="user_tower")
        inputs = self.encoder.encode(records)
        bare = list(inputs)
        bare[3] = torch.zeros_like(bare[3])
        both = [torch.cat([a, b]) for a, b in zip(inputs, bare, strict=True)]
        with torch.inference_mode():
            out = prepare(self.tower(*both).float().numpy(), str(self.manifest["similarity"]))
        return out[: len(records)], out[len(records):]

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
        frame = frame.drop(columns=["user_idx", *[f"{p}_score" for p in PARTS]])
        return frame.merge(self.items.drop(columns="item_id"), on="item_idx", how="left")

    def similar(self, item_id: str, k: int) -> pd.DataFrame:
        """The ``k`` items nearest to ``item_id`` in the index (itself excluded): rank,
        item_idx, item_id, score."""
        row = self.item_idx(item_id)
        k = check_k(k, self.n_items - 1) if self.n_items > 1 else check_k(k, 0)
        excluded = sp.csr_matrix((np.ones(1, np.float32), ([0], [row])), shape=(1, self.n_items))
        scores, ids = self.index.search(self.item_vectors[row : row + 1], k, excluded=excluded)
        keep = ids[0] >= 0
        frame = pd.DataFrame({"rank": np.arange(1, k + 1)[keep], "item_idx": ids[0][keep],
                              "score": scores[0][keep]})
        frame.insert(2, "item_id", self._item_ids[frame["item_idx"].to_numpy()])
        return frame

    def candidates(
        self,
        users: Sequence[UserQuery],
        k: int,
        exclude_purchased: bool = True,
        unknown_user: str | None = None,
    ) -> pd.DataFrame:
        """Long frame of ``k`` candidates per user for the marketing rules: user_idx (-1 for a
        user unknown to the bundle), item_idx, item_id, score, rank (1 = best) and the
        additive explanation: base / behaviour / image / social ``_score`` summing to score."""
        return self.rank(users, k, exclude_purchased, unknown_user).frame()

    def rank(
        self,
        users: Sequence[UserQuery],
        k: int,
        exclude_purchased: bool = True,
        unknown_user: str | None = None,
    ) -> Ranked:
        """The ``k`` best items of each user with their additive explanations, as arrays."""
        k = check_k(k, self.n_items)
        mode = _check_mode(unknown_user or self.unknown_user)
        idx, variants, pop_rows, excluded = self._resolve(users, mode, exclude_purchased)
        scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        ids = np.full((len(users), k), EMPTY, dtype=np.int64)
        vec_rows = np.flatnonzero(~pop_rows)
        if len(vec_rows):
            sub = excluded if excluded is None or len(vec_rows) == len(users) else \
                excluded[vec_rows]
            scores[vec_rows], ids[vec_rows] = self.index.search(variants[0, vec_rows], k,
                                                                excluded=sub)
            self._fill_short(vec_rows, variants[0], excluded, scores, ids)
        if pop_rows.any():
            rows = np.flatnonzero(pop_rows)
            pop = torch.from_numpy(self.popularity).expand(len(rows), -1).clone()
            mask_scores(pop, excluded[rows] if excluded is not None else None)
            scores[rows], ids[rows] = select_top_k(pop, k)
        return self._ranked(idx, ids, scores, variants, pop_rows)

    def _fill_short(self, rows: np.ndarray, queries: np.ndarray,
                    excluded: sp.csr_matrix | None, scores: np.ndarray, ids: np.ndarray) -> None:
        """Rows the approximate index left short of ``k`` items while the catalogue holds
        enough unexcluded ones (the probed lists were too small) are ranked exactly."""
        k = ids.shape[1]
        n_excluded = np.diff(excluded.indptr)[rows] if excluded is not None else 0
        short = rows[(ids[rows] < 0).any(axis=1) & (self.n_items - n_excluded >= k)]
        if not len(short):
            return
        scores[short], ids[short] = exact_top_k(
            queries[short], self.item_vectors, k, metric=self.index.metric,
            excluded=excluded[short] if excluded is not None else None)

    def _resolve(
        self, users: Sequence[UserQuery], mode: str, exclude_purchased: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.csr_matrix | None]:
        """user_idx (-1: not a known user), the user vectors ``[4, n, d]`` in
        :func:`~recsys.serving.explain.user_variant` order, popularity rows, exclusions."""
        n, dim = len(users), int(self.manifest["embedding_dim"])
        idx = np.full(n, -1, dtype=np.int64)
        pop_rows = np.zeros(n, dtype=bool)
        bought: list[list[int]] = [[] for _ in range(n)]
        new: list[tuple[int, Mapping[str, Any]]] = []
        for i, user in enumerate(users):
            if isinstance(user, Mapping):
                bought[i] = self._history_rows(user)
                if self.tower is not None:
                    new.append((i, user))
                else:  # no user tower: the popularity ranking, without the given history
                    pop_rows[i] = True
                continue
            row = self.user_idx(user)
            if row is not None:
                idx[i] = row
                bought[i] = self.history[row].indices.tolist()
            elif mode == "error":
                how = " (neither as stored nor pseudonymised)" if self.pseudonym else ""
                raise UnknownIdError(f"unknown user id {user!r}{how}; use unknown_user=cold to "
                                     f"recommend for a new user", column="user_id")
            elif self.tower is not None:
                new.append((i, {}))
            else:
                pop_rows[i] = True
        variants = np.zeros((4, n, dim), dtype=np.float32)
        known = np.flatnonzero(idx >= 0)
        variants[:, known] = self.user_vectors[idx[known]]
        if self.ablations is not None:
            variants[1:, known] = self.ablations.users[:, idx[known]]
        if new:
            rows, records = [i for i, _ in new], [rec for _, rec in new]
            full, no_history = self.embed_with_and_without_history(records)
            variants[0, rows], variants[2, rows] = full, full  # no social images for new users
            variants[1, rows], variants[3, rows] = no_history, no_history
        excluded = None
        if exclude_purchased and any(bought):
            indptr = np.r_[0, np.cumsum([len(b) for b in bought])]
            cols = np.concatenate([np.asarray(b, np.int64) for b in bought])
            excluded = sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr),
                                     shape=(n, self.n_items))
            excluded.sum_duplicates()  # a history naming an item twice
        return idx, variants, pop_rows, excluded

    def _history_rows(self, record: Mapping[str, Any]) -> list[int]:
        """Item rows of a new user's ``history`` (item ids, or (item id, days ago) pairs)."""
        rows = []
        for entry in record.get("history") or []:
            item = entry[0] if isinstance(entry, tuple | list) else entry
            if str(item) not in self._item_row:
                raise DataError(f"history names unknown item id {item!r}", column="history")
            rows.append(self._item_row[str(item)])
        return rows

    def _ranked(self, idx: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                variants: np.ndarray, pop_rows: np.ndarray) -> Ranked:
        n, k = ids.shape
        query = np.repeat(np.arange(n), k)
        item, score = ids.ravel(), scores.ravel()
        valid = item >= 0
        query, item, score = query[valid], item[valid], score[valid]
        no_image = self.ablations.items if self.ablations is not None else self.item_vectors
        parts = contributions(variants[:, query],
                              np.stack([self.item_vectors[item], no_image[item]]), score)
        popular = pop_rows[query]
        for part in PARTS:
            parts[part][popular] = score[popular] if part == "base" else 0.0
        rank = np.tile(np.arange(1, k + 1), n)[valid]
        return Ranked(idx[query], item, self._item_ids[item], score, rank, parts)


@dataclass(frozen=True)
class Ranked:
    """Recommendations as row-aligned arrays (users one after the other, best first):
    ``parts`` holds the explanation (``base``, ``behaviour``, ``image``, ``social``)."""

    user_idx: np.ndarray
    item_idx: np.ndarray
    item_id: np.ndarray
    score: np.ndarray
    rank: np.ndarray
    parts: dict[str, np.ndarray]

    def columns(self) -> dict[str, np.ndarray]:
        """The candidates' columns: user_idx, item_idx, item_id, score, rank, ``<part>_score``."""
        columns = {"user_idx": self.user_idx, "item_idx": self.item_idx, "item_id": self.item_id,
                   "score": self.score, "rank": self.rank}
        return {**columns, **{f"{p}_score": self.parts[p] for p in PARTS}}

    def frame(self) -> pd.DataFrame:
        """The candidates frame (:meth:`columns`)."""
        return pd.DataFrame(self.columns())


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
    item_vectors: np.ndarray,
    history: sp.csr_matrix,
    popularity: np.ndarray,
    ablations: Ablations | None,
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
        (B.ITEM_EMBEDDINGS, item_vectors.shape != (n_items, dim),
         f"item embeddings {item_vectors.shape} for {n_items} items of dimension {dim}"),
        (B.ABLATIONS, ablations is not None and (ablations.users.shape != (3, *vectors.shape)
                                                 or ablations.items.shape != item_vectors.shape),
         "ablated vectors do not match the user and item vectors"),
    ]
    for name, bad, message in problems:
        if bad:
            raise BundleError(message, file=str(root / name))
