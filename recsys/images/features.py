"""Dataset-level image features: ``extract_dataset_features`` writes, ``load_features`` reads.

A features directory (one per dataset + encoder + preprocessing [+ PCA]) holds
``item_features.npy`` (float32 ``[n_items, D]``, rows aligned to item_idx, zero where there is
no usable image), ``item_mask.npy`` (bool ``[n_items]``), ``user_image_features.npy`` (float32
``[n_images, D]``, only usable images of consenting users), ``user_image_user_idx.npy`` (int64,
sorted), ``user_image_offsets.npy`` (int64 ``[n_users + 1]``, CSR: user ``u`` owns rows
``offsets[u]:offsets[u+1]``), ``user_image_rows.npy`` (row of each image in user_images.parquet),
optional ``pca.npz``, and ``report.json``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.data.atomic import atomic_directory
from recsys.devices import resolve_device
from recsys.errors import DataError
from recsys.images.cache import FeatureCache
from recsys.images.encoders import ImageEncoder, build_encoder
from recsys.images.extract import EncodeResult, ExtractSettings, encode_images
from recsys.images.jpeg_device import resolve_jpeg_decode
from recsys.images.pca import PcaProjection, fit_pca
from recsys.images.report import ExtractionReport, ImageSetReport
from recsys.images.tables import ImageTables, read_image_tables
from recsys.images.transforms import build_transform, preprocess_id

log = logging.getLogger(__name__)

ARRAYS: tuple[str, ...] = (
    "item_features",
    "item_mask",
    "user_image_features",
    "user_image_user_idx",
    "user_image_offsets",
    "user_image_rows",
)


@dataclass(frozen=True)
class ImageFeatures:
    """The arrays of a features directory (memory-mapped when loaded with ``mmap=True``)."""

    path: Path
    item_features: np.ndarray
    item_mask: np.ndarray
    user_image_features: np.ndarray
    user_image_user_idx: np.ndarray
    user_image_offsets: np.ndarray
    user_image_rows: np.ndarray
    report: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.item_features.shape[1])

    @property
    def n_users(self) -> int:
        return len(self.user_image_offsets) - 1

    def user_images(self, user_idx: int) -> np.ndarray:
        """Feature rows ``[k, D]`` of one user's social images (``k`` may be 0)."""
        lo, hi = self.user_image_offsets[user_idx], self.user_image_offsets[user_idx + 1]
        return np.asarray(self.user_image_features[lo:hi])

    def pooled_user_features(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean social-image feature per user ``[n_users, D]`` and a has-images mask."""
        counts = np.diff(self.user_image_offsets)
        sums = np.zeros((self.n_users, self.dim), dtype=np.float64)
        np.add.at(sums, np.asarray(self.user_image_user_idx), self.user_image_features)
        mean = sums / np.maximum(counts, 1)[:, None]
        return mean.astype(np.float32), counts > 0


def load_features(features_dir: Path, mmap: bool = True) -> ImageFeatures:
    """Open a directory written by :func:`extract_dataset_features`."""
    features_dir = Path(features_dir)
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        path = features_dir / f"{name}.npy"
        if not path.is_file():
            raise DataError("missing image feature array", file=str(path))
        arrays[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    report_path = features_dir / "report.json"
    if not report_path.is_file():
        raise DataError("missing report", file=str(report_path))
    feats = ImageFeatures(path=features_dir, report=json.loads(report_path.read_text()), **arrays)
    n_images = len(feats.user_image_features)
    if (
        feats.item_mask.shape != (len(feats.item_features),)
        or feats.user_image_user_idx.shape != (n_images,)
        or feats.user_image_features.shape[1:] != feats.item_features.shape[1:]
        or int(feats.user_image_offsets[-1]) != n_images
    ):
        raise DataError("inconsistent array shapes", file=str(features_dir))
    return feats


def _preprocess_id(cfg: DictConfig) -> str:
    # device decoding resamples differently: its features are cached apart
    extra: dict[str, Any] = {"loading": as_dict(cfg.loading, "loading")}
    if resolve_jpeg_decode(str(cfg.get("jpeg_decode", "cpu")), resolve_device(str(cfg.device))):
        extra["jpeg_decode"] = "device"
    return preprocess_id(cfg.image_encoder, extra)


def open_feature_cache(cfg: DictConfig, encoder: ImageEncoder, root: Path | None = None) -> FeatureCache:
    """The feature cache of ``cfg`` (shaped like ``conf/features.yaml``) for ``encoder``: namespace
    ``<encoder id>-<preprocess id>`` under ``root`` (default ``cfg.cache.dir``)."""
    return FeatureCache(
        Path(cfg.cache.dir if root is None else root),
        f"{encoder.encoder_id}-{_preprocess_id(cfg)}",
        encoder.out_dim,
        meta={"encoder": as_dict(cfg.image_encoder, "image_encoder"), "loading": as_dict(cfg.loading, "loading")},
    )


def extract_dataset_features(dataset_dir: Path, cfg: DictConfig) -> Path:
    """Encode the item and social images of a processed dataset; return the features dir
    ``<paths.features_dir>/<manifest name>-<fingerprint>/<encoder id>-<preprocess id>[-pcaD]``.

    ``cfg`` is shaped like ``conf/features.yaml``: ``image_encoder``, ``batch_size``,
    ``num_workers``, ``torch_threads``, ``device``, ``amp_bf16``, ``channels_last``,
    ``hash_threads``, ``on_bad_image``, ``respect_consent``, ``pca``, ``loading``, ``cache`` and
    ``paths.features_dir``. Social images count only for users with ``social_image_consent``
    (unless ``respect_consent`` is false); unusable ones are left out of the CSR arrays.
    """
    start = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    tables = read_image_tables(dataset_dir)
    settings = ExtractSettings.from_config(as_dict(cfg, "features"))
    encoder = build_encoder(cfg.image_encoder)
    preprocess = build_transform(cfg.image_encoder, train=False)
    prep = _preprocess_id(cfg)
    cache = open_feature_cache(cfg, encoder) if cfg.cache.enabled else None
    pca_cfg = as_dict(cfg.pca, "pca")
    report = ExtractionReport(
        dataset=tables.name,
        encoder_id=encoder.encoder_id,
        encoder=str(cfg.image_encoder.name),
        preprocess_id=prep,
        raw_dim=encoder.out_dim,
        dim=encoder.out_dim,
        device=settings.device,
        on_bad_image=settings.on_bad_image,
        pca=pca_cfg,
        items=ImageSetReport(rows=tables.n_items),
        user_images=ImageSetReport(rows=0),
    )

    def encode(paths: list[str]) -> EncodeResult:
        assert tables.image_root is not None
        return encode_images(tables.image_root, paths, encoder, preprocess, settings, cache)

    item_feats, item_mask = _item_features(tables, encode, report.items)
    user_feats, user_idx, rows = _user_image_features(
        tables, encode, report.user_images, bool(cfg.respect_consent)
    )
    pca: PcaProjection | None = None
    if pca_cfg["enabled"]:
        pca = fit_pca(np.concatenate([item_feats[item_mask], user_feats]), int(pca_cfg["dim"]))
        item_feats = np.where(item_mask[:, None], pca.transform(item_feats), 0).astype(np.float32)
        user_feats = pca.transform(user_feats)
        report.dim = pca.dim
    offsets = np.zeros(tables.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user_idx, minlength=tables.n_users), out=offsets[1:])
    arrays = {
        "item_features": item_feats,
        "item_mask": item_mask,
        "user_image_features": user_feats.astype(np.float32),
        "user_image_user_idx": user_idx,
        "user_image_offsets": offsets,
        "user_image_rows": rows,
    }
    variant = f"{encoder.encoder_id}-{prep}" + (f"-pca{report.dim}" if pca_cfg["enabled"] else "")
    out_dir = Path(cfg.paths.features_dir) / tables.name / variant
    report.seconds = round(time.perf_counter() - start, 3)
    _write_dir(out_dir, arrays, report, pca)
    log.info(
        "image features %s: items %d encoded / %d cached / %d failed, social images %d, %.1f s",
        out_dir,
        report.items.encoded,
        report.items.cached,
        report.items.placeholders,
        len(user_feats),
        report.seconds,
    )
    return out_dir


def _item_features(
    tables: ImageTables, encode: Any, rep: ImageSetReport
) -> tuple[np.ndarray, np.ndarray]:
    has = tables.item_paths.notna().to_numpy()
    rep.without_image = int((~has).sum())
    result: EncodeResult = encode([str(p) for p in tables.item_paths[has]])
    rep.add(result)
    feats = np.zeros((tables.n_items, result.features.shape[1]), dtype=np.float32)
    mask = np.zeros(tables.n_items, dtype=bool)
    rows = np.flatnonzero(has)
    feats[rows] = result.features
    mask[rows] = result.ok
    return feats, mask


def _user_image_features(
    tables: ImageTables, encode: Any, rep: ImageSetReport, respect_consent: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ui = tables.user_images
    rep.rows = len(ui)
    user_idx = ui["user_idx"].to_numpy(dtype=np.int64)
    has = ui["image_path"].notna().to_numpy()
    consent = tables.user_consent[user_idx] if respect_consent else np.ones(len(ui), bool)
    rep.without_image = int((~has).sum())
    rep.skipped_no_consent = int((has & ~consent).sum())
    keep = np.flatnonzero(has & consent)
    result: EncodeResult = encode([str(p) for p in ui["image_path"].to_numpy()[keep]])
    rep.add(result)
    keep, feats = keep[result.ok], result.features[result.ok]
    order = np.argsort(user_idx[keep], kind="stable")
    return feats[order], user_idx[keep][order], keep[order].astype(np.int64)


def _write_dir(
    out_dir: Path,
    arrays: dict[str, np.ndarray],
    report: ExtractionReport,
    pca: PcaProjection | None,
) -> None:
    """Build the directory in a temporary sibling and rename it over ``out_dir``."""
    with atomic_directory(out_dir) as tmp:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arrays[name]), allow_pickle=False)
        if pca is not None:
            pca.save(tmp / "pca.npz")
        report.write(tmp / "report.json")
