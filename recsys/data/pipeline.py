"""The data stage: source -> validate (row-level) -> split -> fit statistics on train, apply to all
-> processed dataset."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

import recsys
from recsys.config import as_dict
from recsys.data import clean, integrate
from recsys.data.atomic import atomic_directory
from recsys.data.canonical import load_canonical
from recsys.data.fingerprint import config_hash, frame_fingerprint
from recsys.data.fit import Applied, fit_apply
from recsys.data.fitted_io import save_fitted
from recsys.data.kcore import kcore_filter
from recsys.data.privacy import pseudonymise, strip_pii
from recsys.data.quality import ROW, QualityReport
from recsys.data.source_config import SourceConfig, parse_source_config
from recsys.data.split import split_interactions
from recsys.errors import ConfigError

log = logging.getLogger(__name__)


def build_dataset(cfg: DictConfig) -> Path:
    """Run the whole data stage for ``cfg`` (entry config ``conf/data.yaml``); returns the directory."""
    t0 = time.perf_counter()
    source = parse_source_config(cfg.data)
    pre = as_dict(cfg.preprocess, "preprocess")
    if cfg.get("split") is None:
        raise ConfigError(f"split: data={source.name} names no split; add `defaults: "
                          "[/split@_global_.split: <name>]` to its config or pass +split=<name>")
    split_cfg = as_dict(cfg.split, "split")
    if source.source == "synthetic":
        _generate_synthetic(source)
    report = QualityReport(policy=str(pre["on_invalid"]))
    tables = read_sources(source, report)
    tables = preprocess(tables, source, pre, report)
    tables = kcore_filter(tables, source, report)
    frames, split_info = split_interactions(tables["interactions"], split_cfg, positive_events=source.positive_events,
                                            source_file=report.files.get("interactions"))
    applied = fit_apply(tables, frames, source, pre, report)
    out = Path(str(cfg.output_dir))
    cfg_hash = config_hash({"data": as_dict(cfg.data, "data"), "preprocess": pre, "split": split_cfg})
    write_dataset(out, applied, split_info, source, report, cfg_hash)
    log.info("wrote %s in %.1fs", out, time.perf_counter() - t0)
    return out


def _generate_synthetic(source: SourceConfig) -> None:
    from recsys.data.synthetic import generate

    if source.generator is None:
        raise ConfigError(f"data={source.name}: a synthetic source needs a `generator` block")
    generate(source.generator, source.root)


def read_sources(source: SourceConfig, report: QualityReport) -> dict[str, pd.DataFrame]:
    """Load every configured table onto the canonical schema."""
    tables = {name: load_canonical(spec, report) for name, spec in source.tables.items()}
    if "user_images" not in tables:
        tables["user_images"] = pd.DataFrame({
            ROW: pd.Series(dtype="int64"), "user_id": pd.Series(dtype="object"),
            "image_path": pd.Series(dtype="string"), "posted_at": pd.Series(dtype="datetime64[ns]"),
        })
    return tables


def preprocess(
    tables: dict[str, pd.DataFrame], source: SourceConfig, pre: Mapping[str, Any], report: QualityReport
) -> dict[str, pd.DataFrame]:
    """Row-level privacy, cleaning and integration across tables; nothing here is fitted (the
    statistics are fitted on the training split by :func:`recsys.data.fit.fit_apply`)."""
    inter, users, items, uimg = (tables[t] for t in ("interactions", "users", "items", "user_images"))
    users = strip_pii(users, "users", source.tables["users"].pii, report)
    dedup = pre["dedup"]
    inter = clean.deduplicate(inter, "interactions", str(dedup["interactions"]), report)
    users = clean.deduplicate(users, "users", "key", report)
    items = clean.deduplicate(items, "items", "key", report)
    inter, users, items = (clean.check_ranges(frame, name, pre["ranges"], report) for name, frame in
                           (("interactions", inter), ("users", users), ("items", items)))
    inter = integrate.check_references(inter, users, items, str(pre["on_unknown_ids"]), report)
    img_policy = str(pre["on_bad_image_path"])
    items = integrate.check_image_paths(items, "items", source.root, img_policy, report)
    if len(uimg):
        n = len(uimg)
        uimg = report.reject("user_images", uimg, ~uimg["user_id"].isin(users["user_id"]),
                             "user_id not found in the users table", "user_id",
                             policy=str(pre["on_unknown_ids"]))
        report.step("user_images", "reference check", n, len(uimg))
        uimg = integrate.check_image_paths(uimg, "user_images", source.root, img_policy, report)
    inter, users, uimg = _pseudonymise(pre["privacy"], report, inter, users, uimg)
    # file order breaks ties; without timestamps (all NaT) the file order stays
    inter = inter.iloc[np.argsort(inter["timestamp"].to_numpy(), kind="stable")]
    return {"interactions": inter, "users": users, "items": items, "user_images": uimg}


def _pseudonymise(privacy: Mapping[str, Any], report: QualityReport, *frames: pd.DataFrame
                  ) -> tuple[pd.DataFrame, ...]:
    """Keyed pseudonyms for customer ids, after every row-level check (so errors name the id as
    it is in the file); rows quarantined so far get them too, so no raw id is written."""
    if not privacy["pseudonymise"]:
        return frames
    key, length = str(privacy["key"]), int(privacy["hash_length"])
    for rejected in report.quarantined.values():
        for part in rejected:
            if "user_id" in part.columns:
                part["user_id"] = pseudonymise(part["user_id"].astype("string"), key, length)
    return tuple(f.assign(user_id=pseudonymise(f["user_id"], key, length)) if len(f) else f for f in frames)


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Row positions of ``values`` in ``index``, looked up once per distinct value."""
    cat = values.astype("category")
    per_category = index.get_indexer(cat.cat.categories.astype("string"))
    return np.asarray(per_category, dtype=np.int64)[cat.cat.codes.to_numpy()]


def write_dataset(
    out: Path,
    applied: Applied,
    split_info: dict[str, Any],
    source: SourceConfig,
    report: QualityReport,
    cfg_hash: str,
) -> None:
    """Index and write every table, the fitted statistics (vocabularies included), the report
    and the manifest."""
    tables, frames, specs = applied.tables, applied.frames, applied.specs
    users = tables["users"].reset_index(drop=True)
    items = tables["items"].reset_index(drop=True)
    users.insert(0, "user_idx", np.arange(len(users), dtype=np.int64))
    items.insert(0, "item_idx", np.arange(len(items), dtype=np.int64))
    users["user_id"] = users["user_id"].astype("string")
    items["item_id"] = items["item_id"].astype("string")
    uindex = pd.Index(users["user_id"])
    iindex = pd.Index(items["item_id"])
    positives = set(source.positive_events)
    out_frames: dict[str, pd.DataFrame] = {}
    for split, df in frames.items():
        df = df.drop(columns=[ROW])
        df.insert(0, "item_idx", _positions(iindex, df["item_id"]))
        df.insert(0, "user_idx", _positions(uindex, df["user_id"]))
        df = df.assign(positive=df["event"].isin(positives).to_numpy())
        out_frames[split] = df.reset_index(drop=True)
    uimg = tables["user_images"].drop(columns=[ROW])
    uimg.insert(0, "user_idx", _positions(uindex, uimg["user_id"]))
    out_frames["user_images"] = uimg.sort_values(["user_idx", "posted_at"], kind="stable").reset_index(drop=True)
    out_frames["users"] = users.drop(columns=[ROW])
    out_frames["items"] = items.drop(columns=[ROW])
    fingerprint = frame_fingerprint(tables)
    with atomic_directory(out) as tmp:
        for name, df in out_frames.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        save_fitted(tmp, applied.params)
        (tmp / "features.json").write_text(json.dumps({k: s.to_dict() for k, s in specs.items()}, indent=2))
        report.write(tmp)
        manifest = {
            "name": source.name,
            "package_version": recsys.__version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config_hash": cfg_hash,
            "data_fingerprint": fingerprint,
            "image_root": str(source.root),
            "positive_events": sorted(positives),
            "has_timestamps": bool(tables["interactions"]["timestamp"].notna().any()),
            "row_counts": {k: len(v) for k, v in out_frames.items()},
            "schema": {k: {c: str(t) for c, t in v.dtypes.items()} for k, v in out_frames.items()},
            "split": split_info,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
