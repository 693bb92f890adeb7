"""A ranked bundle: the two-stage pipeline (candidate sources, feature builders, LightGBM ranker
and its calibration) served as one verified directory. Serving runs the very code that ranked
offline (:class:`recsys.ranking.pipeline.TwoStage`), so served scores equal offline ones.

Each recommended row carries the ranker's score, a calibrated purchase probability and the
features that pushed it up most (LightGBM's per-row contributions), in the columns the rules
engine reads, so promotion and pricing rules can condition on ``purchase_probability``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import recsys
from recsys.data.atomic import atomic_directory
from recsys.errors import BundleError, DataError
from recsys.ranking.candidates import Candidates, merge
from recsys.ranking.config import ranking_config
from recsys.ranking.features import Catalog
from recsys.ranking.history import History
from recsys.ranking.model import META_FILE, MODEL_FILE, Ranker, load_ranker
from recsys.ranking.pipeline import Period, TwoStage
from recsys.ranking.sources import TwoTower
from recsys.retrieval.embeddings import StaticEmbeddings
from recsys.retrieval.index import ItemIndex
from recsys.serving.bundle import checksums, compatible, read_manifest

FORMAT = "recsys-ranked-bundle"
SPEC, HISTORY, CATALOG, IDS = "spec.json", "history.parquet", "catalog.npz", "ids.npz"
EVENTS = "events.parquet"  # the history's weighted events, with candidates.features.events
FILES = (SPEC, HISTORY, CATALOG, IDS, MODEL_FILE, META_FILE)
TWO_TOWER, TWO_TOWER_INDEX = "two_tower.npz", "two_tower.faiss"  # with a two-tower source


def feature_names(pipeline: TwoStage, history: History) -> tuple[str, ...]:
    """The features ``pipeline`` builds from ``history`` (what a ranker must have seen)."""
    none = np.empty(0, np.int64)
    empty = Candidates(none, none, np.empty(0), none)
    cands = merge(np.empty(0, np.int64), history.n_items,
                  {name: empty for name in pipeline.source_names()})
    return pipeline.features(cands, history).names


def export_ranked(root: Path | str, spec: Mapping[str, Any], pipeline: TwoStage, ranker: Ranker,
                  history: History, user_ids: Sequence[str], item_ids: Sequence[str]) -> Path:
    """Write the bundle atomically: config, history as of its cut-off, catalogue arrays, ids,
    ranker; a manifest with checksums, the cut-off and the feature names."""
    cat = pipeline.catalog
    arrays: dict[str, np.ndarray] = {
        "user_values": cat.user_values, "item_values": cat.item_values,
        **({"groups": cat.groups} if cat.groups is not None else {}),
        **({"price": cat.price} if cat.price is not None else {}),
        **({"images": cat.images} if cat.images is not None else {}),
        **{f"affinity__{k}": v for k, v in cat.affinity.items()},
        **{f"segments__{k}": v for k, v in pipeline.segments.items()},
    }
    with atomic_directory(Path(root)) as tmp:
        (tmp / SPEC).write_text(json.dumps({k: spec[k] for k in ("candidates", "ranker")}))
        history.frame.to_parquet(tmp / HISTORY, index=False)
        np.savez(tmp / CATALOG, allow_pickle=False, **arrays)
        np.savez(tmp / IDS, users=np.asarray(user_ids, dtype=str),
                 items=np.asarray(item_ids, dtype=str))
        ranker.save(tmp)
        files = list(FILES)
        if history.events is not None:
            history.events.to_parquet(tmp / EVENTS, index=False)
            files.append(EVENTS)
        two_tower = None
        if pipeline.embedding is not None:
            two_tower = _write_two_tower(tmp, pipeline.embedding, history.n_users,
                                         pipeline.cfg.batch_users)
            files += [TWO_TOWER, TWO_TOWER_INDEX]
        manifest = {"format": FORMAT, "version": recsys.__version__,
                    "cutoff": None if history.cutoff is None else str(history.cutoff),
                    "n_users": history.n_users, "n_items": history.n_items,
                    "user_names": list(cat.user_names), "item_names": list(cat.item_names),
                    "image_recent": cat.image_recent,
                    "features": list(ranker.feature_names), "two_tower": two_tower,
                    "files": checksums(tmp, files)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return Path(root)


def _write_two_tower(root: Path, two_tower: TwoTower, n_users: int, batch: int
                     ) -> dict[str, Any]:
    """Every user's vector as of the bundle's history, the item vectors and the FAISS index the
    source searches; returns the manifest entry."""
    model = two_tower.model
    users = np.concatenate([np.asarray(model.user_embeddings(np.arange(s, min(s + batch, n_users))),
                                       np.float32) for s in range(0, n_users, batch)])
    np.savez(root / TWO_TOWER, allow_pickle=False, users=users,
             items=np.asarray(model.item_embeddings(batch), np.float32))
    (root / TWO_TOWER_INDEX).write_bytes(two_tower.index.to_bytes())
    return {"similarity": model.similarity, "factory": two_tower.index.factory,
            "params": dict(two_tower.index.params)}


def _read_two_tower(root: Path, entry: Mapping[str, Any]) -> TwoTower:
    with np.load(root / TWO_TOWER, allow_pickle=False) as parts:
        vectors = StaticEmbeddings(parts["items"], parts["users"], str(entry["similarity"]))
    index = ItemIndex.from_bytes((root / TWO_TOWER_INDEX).read_bytes(), str(entry["factory"]),
                                 dict(entry["params"]))
    return TwoTower(vectors, index)


class RankedRecommender:
    """Top-k of known users by the bundle's pipeline and ranker."""

    def __init__(self, pipeline: TwoStage, ranker: Ranker, history: History,
                 user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        self.pipeline = pipeline
        self.ranker = ranker
        self.history = history
        self.user_ids = user_ids
        self.item_ids = item_ids
        self._user_row = {u: i for i, u in enumerate(user_ids.tolist())}

    @classmethod
    def load(cls, root: Path | str) -> RankedRecommender:
        """Verify format, version and checksums; a ranker trained on other features than the
        bundle's pipeline builds is refused (ModelError)."""
        root = Path(root)
        manifest = read_manifest(root)
        if manifest.get("format") != FORMAT:
            raise BundleError(f"not a ranked bundle (format {manifest.get('format')!r})",
                              file=str(root / "manifest.json"))
        if not compatible(str(manifest.get("version")), recsys.__version__):
            raise BundleError(f"bundle version {manifest.get('version')} is incompatible with "
                              f"recsys {recsys.__version__}", file=str(root / "manifest.json"))
        files = manifest.get("files") or {}
        expected = [*FILES, *((TWO_TOWER, TWO_TOWER_INDEX) if manifest.get("two_tower") else ()),
                    *((EVENTS,) if EVENTS in files else ())]
        found = checksums(root, [n for n in expected if (root / n).is_file()])
        for name in expected:
            if name not in found or found[name]["sha256"] != files.get(name, {}).get("sha256"):
                raise BundleError("file missing or checksum mismatch", file=str(root / name))
        spec = json.loads((root / SPEC).read_text())
        cfg = ranking_config(spec["candidates"], spec["ranker"])
        with np.load(root / CATALOG, allow_pickle=False) as arr:
            parts = {k: arr[k] for k in arr.files}
        with np.load(root / IDS, allow_pickle=False) as ids:
            user_ids, item_ids = ids["users"], ids["items"]
        catalog = Catalog(groups=parts.get("groups"), price=parts.get("price"),
                          user_values=parts["user_values"],
                          user_names=tuple(manifest["user_names"]),
                          item_values=parts["item_values"],
                          item_names=tuple(manifest["item_names"]),
                          affinity={k.split("__", 1)[1]: v for k, v in parts.items()
                                    if k.startswith("affinity__")},
                          images=parts.get("images"), image_recent=int(manifest["image_recent"]))
        segments = {k.split("__", 1)[1]: v for k, v in parts.items() if k.startswith("segments__")}
        cutoff = manifest.get("cutoff")
        history = History(pd.read_parquet(root / HISTORY), int(manifest["n_users"]),
                          int(manifest["n_items"]), None if cutoff is None else pd.Timestamp(cutoff),
                          pd.read_parquet(root / EVENTS) if EVENTS in files else None)
        two_tower = _read_two_tower(root, manifest["two_tower"]) if manifest.get("two_tower") \
            else None
        pipeline = TwoStage(cfg, catalog, segments, two_tower)
        ranker = load_ranker(root, expected=feature_names(pipeline, history))
        return cls(pipeline, ranker, history, user_ids, item_ids)

    def user_rows(self, user_ids: Sequence[str]) -> np.ndarray:
        """user_idx of known users; a DataError names the first unknown id."""
        rows = [self._user_row.get(str(u), -1) for u in user_ids]
        if min(rows, default=0) < 0:
            bad = next(str(u) for u, r in zip(user_ids, rows, strict=True) if r < 0)
            raise DataError(f"unknown user id {bad!r}", column="user_id")
        return np.asarray(rows, np.int64)

    def scores(self, users: np.ndarray) -> pd.DataFrame:
        """Every candidate of ``users`` (user_idx) with the ranker's raw score."""
        table = self.pipeline.score_table(Period(self.history, np.asarray(users, np.int64)))
        score = self.ranker.predict(table.features.values, table.features.names)
        return pd.DataFrame({"user_idx": table.cands.users[table.cands.rows],
                             "item_idx": table.cands.items, "score": score})

    def recommend(self, user_ids: Sequence[str], k: int, explain: int = 3) -> pd.DataFrame:
        """Top ``k`` per user: ids, rank, score, purchase probability, the ``explain`` features
        that pushed the item up most (``pushed_by``: "<feature> +<contribution>; ...", which
        the rules engine copies into each row's explanation), and the rules engine's candidate
        columns."""
        users = self.user_rows(user_ids)
        table = self.pipeline.score_table(Period(self.history, users))
        names = table.features.names
        score = self.ranker.predict(table.features.values, names)
        top = self.pipeline.rank(self.ranker, Period(self.history, users), k, table)
        rows = np.repeat(np.arange(len(users)), k)
        items = top.ravel()
        ok = items >= 0
        rows, items = rows[ok], items[ok]
        pos = np.searchsorted(table.cands.keys, rows * self.history.n_items + items)
        contrib = self.ranker.contributions(table.features.values[pos], names)[:, :-1]
        best = np.argsort(-contrib, axis=1, kind="stable")[:, :explain]
        pushed = ["; ".join(f"{names[j]} {c[j]:+.3f}" for j in b if c[j] > 0)
                  for b, c in zip(best, contrib, strict=True)]
        s = score[pos]
        return pd.DataFrame({
            "user_id": self.user_ids[users[rows]], "item_id": self.item_ids[items],
            "user_idx": users[rows], "item_idx": items, "rank": np.tile(np.arange(k), len(users))[ok],
            "score": s, "purchase_probability": self.ranker.probability(s),
            "behaviour_score": s, "image_score": 0.0, "social_score": 0.0, "pushed_by": pushed,
        })


def with_top_probability(users: pd.DataFrame, recs: pd.DataFrame,
                         column: str = "top_purchase_probability") -> pd.DataFrame:
    """``users`` (dense user_idx) with the purchase probability of each user's best ranked item
    (NaN for users not ranked): a user-level column that promotion and pricing rules can
    condition on, beside the row-level ``purchase_probability`` of ``recs``."""
    best = recs.groupby("user_idx")["purchase_probability"].max()
    out = users.copy()
    out[column] = best.reindex(out["user_idx"].to_numpy()).to_numpy()
    return out
