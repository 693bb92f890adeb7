"""Right to erasure: one customer's rows removed from every table, bundle and plan of a dataset.

A customer is named by the original id; the processed tables hold its keyed pseudonym. Tables
keep their dense ``user_idx`` (every later stage indexes by it), so the customer's row of a user
table becomes a tombstone (``user_id`` ``erased-<user_idx>``, every attribute empty) while every
other row of it (interactions, social images, mining outputs, candidates, plans) is deleted. In a
bundle the user's vector and its ablations are zeroed, its history (the exclusion list) emptied
and the manifest re-checksummed with a new creation time (a running service reloads it). Each
directory is rewritten atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.atomic import atomic_directory
from recsys.errors import DataError
from recsys.serving import bundle as B

TABLE_SUFFIXES = (".parquet", ".csv", ".jsonl")
USER_TABLES = ("users.parquet",)  # one row per user_idx: tombstoned, not deleted


@dataclass(frozen=True)
class Customer:
    """Who is erased: every form of its id and its row index in the dataset."""

    original: str
    pseudonym: str
    user_idx: int

    @property
    def ids(self) -> set[str]:
        return {self.original, self.pseudonym}

    @property
    def tombstone(self) -> str:
        return f"erased-{self.user_idx}"


@dataclass
class ErasureReport:
    """Rows removed / tombstoned per file (paths relative to each root), bundles rewritten."""

    rows: dict[str, int] = field(default_factory=dict)
    bundles: list[str] = field(default_factory=list)
    buckets: dict[str, int] = field(default_factory=dict)

    def add(self, root: Path, name: str, n: int) -> None:
        if n:
            self.rows[str(root / name)] = self.rows.get(str(root / name), 0) + n


def find_customer(dataset_dir: Path, original: str, pseudonym: str) -> Customer:
    """The customer's row in the dataset's user table; a DataError naming the id as given
    when neither its pseudonym nor the id itself is there."""
    path = Path(dataset_dir) / "users.parquet"
    if not path.is_file():
        raise DataError("not a processed dataset: users.parquet missing", file=str(path))
    users = pd.read_parquet(path, columns=["user_idx", "user_id"])
    hit = users[users["user_id"].astype(str).isin({original, pseudonym})]
    if hit.empty:
        raise DataError(f"unknown customer {original!r}: not in the dataset (already erased?)",
                        file=str(path), column="user_id")
    return Customer(original, pseudonym, int(hit["user_idx"].iloc[0]))


def erase_tables(root: Path, customer: Customer, report: ErasureReport) -> None:
    """Rewrite every table under ``root`` (recursively) without the customer's rows."""
    root = Path(root)
    if not root.is_dir():
        return
    with atomic_directory(root) as tmp:
        shutil.copytree(root, tmp, dirs_exist_ok=True)
        for path in sorted(tmp.rglob("*")):
            if path.suffix in TABLE_SUFFIXES and path.is_file():
                name = str(path.relative_to(tmp))
                report.add(root, name, _erase_table(path, customer))


def _erase_lines(path: Path, customer: Customer) -> int:
    """JSON lines: drop the records of the customer (by user_idx or user_id)."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if not _is_customer(json.loads(line), customer)] \
        if lines else []
    if len(kept) != len(lines):
        path.write_text("".join(f"{line}\n" for line in kept))
    return len(lines) - len(kept)


def _is_customer(record: object, customer: Customer) -> bool:
    return isinstance(record, dict) and (record.get("user_idx") == customer.user_idx
                                         or str(record.get("user_id")) in customer.ids)


def _erase_table(path: Path, customer: Customer) -> int:
    if path.suffix == ".jsonl":
        return _erase_lines(path, customer)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    mine = np.zeros(len(frame), dtype=bool)
    if "user_idx" in frame.columns:
        mine |= frame["user_idx"].to_numpy() == customer.user_idx
    if "user_id" in frame.columns:
        mine |= frame["user_id"].astype(str).isin(customer.ids).to_numpy()
    if not mine.any():
        return 0
    tombstone = path.name in USER_TABLES
    frame = _tombstone(frame, mine, customer) if tombstone else frame[~mine].reset_index(drop=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return int(mine.sum())


def _tombstone(frame: pd.DataFrame, rows: np.ndarray, customer: Customer) -> pd.DataFrame:
    """Every attribute of ``rows`` emptied (NaN / None / False / 0), user_idx kept."""
    out = frame.copy()
    for col in out.columns:
        if col == "user_idx":
            continue
        dtype = out[col].dtype
        if col == "user_id":
            out[col] = out[col].astype(object)
            out.loc[rows, col] = customer.tombstone
        elif pd.api.types.is_bool_dtype(dtype):
            out.loc[rows, col] = False
        elif pd.api.types.is_integer_dtype(dtype):
            out.loc[rows, col] = 0
        else:
            out.loc[rows, col] = None
    return out


def image_rows(dataset_dir: Path, customer: Customer) -> np.ndarray:
    """Rows of the customer's social images in the dataset's user_images.parquet."""
    path = Path(dataset_dir) / "user_images.parquet"
    if not path.is_file():
        return np.zeros(0, dtype=np.int64)
    owner = pd.read_parquet(path, columns=["user_idx"])["user_idx"].to_numpy()
    return np.flatnonzero(owner == customer.user_idx)


def erase_image_features(root: Path, customer: Customer, erased_rows: np.ndarray,
                         report: ErasureReport) -> None:
    """Drop the customer's social-image features from every features directory under ``root``
    (one per encoder: ``user_image_*.npy``, CSR by user) and renumber the remaining images'
    rows of user_images.parquet (``erased_rows`` are deleted there)."""
    for index in sorted(Path(root).glob("*/user_image_user_idx.npy")):
        folder = index.parent
        owner = np.load(index)
        mine = owner == customer.user_idx
        if not mine.any():
            continue
        with atomic_directory(folder) as tmp:
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            features = np.load(tmp / "user_image_features.npy")[~mine]
            rows = np.load(tmp / "user_image_rows.npy")[~mine]
            n_users = len(np.load(tmp / "user_image_offsets.npy")) - 1
            kept = owner[~mine]
            offsets = np.r_[0, np.cumsum(np.bincount(kept, minlength=n_users))].astype(np.int64)
            np.save(tmp / "user_image_features.npy", features)
            np.save(tmp / "user_image_user_idx.npy", kept)
            np.save(tmp / "user_image_rows.npy", rows - np.searchsorted(erased_rows, rows))
            np.save(tmp / "user_image_offsets.npy", offsets)
        report.add(folder, "user_image_features.npy", int(mine.sum()))


def erase_bundle(bundle_dir: Path, customer: Customer, report: ErasureReport) -> bool:
    """Zero the customer's vectors and history in the bundle; False when the bundle does not
    hold it. The manifest gets new checksums and creation time."""
    root = Path(bundle_dir)
    manifest = B.read_manifest(root)
    users = pd.read_parquet(root / B.USERS)
    hit = users.index[users["user_id"].astype(str).isin(customer.ids)]
    if hit.empty:
        return False
    row = int(hit[0])
    with atomic_directory(root) as tmp:
        shutil.copytree(root, tmp, dirs_exist_ok=True)
        users.loc[row, "user_id"] = customer.tombstone
        users.to_parquet(tmp / B.USERS, index=False)
        vectors = np.load(tmp / B.USER_EMBEDDINGS)
        vectors[row] = 0.0
        np.save(tmp / B.USER_EMBEDDINGS, vectors)
        history = sp.load_npz(tmp / B.HISTORY).tolil()
        history.rows[row], history.data[row] = [], []
        sp.save_npz(tmp / B.HISTORY, history.tocsr())
        if (tmp / B.ABLATIONS).is_file():
            with np.load(tmp / B.ABLATIONS) as parts:
                abl_users, abl_items = parts["users"].copy(), parts["items"]
            abl_users[:, row] = 0.0
            np.savez(tmp / B.ABLATIONS, users=abl_users, items=abl_items)
        manifest["files"] = B.checksums(tmp, sorted(manifest["files"]))
        manifest["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        manifest["erasures"] = int(manifest.get("erasures", 0)) + 1
        (tmp / B.MANIFEST).write_text(json.dumps(manifest, indent=2))
    report.bundles.append(str(root))
    return True


def audit_record(report: ErasureReport, dataset: str, reason: str) -> dict[str, object]:
    """What was erased where, without the customer's id, pseudonym or row index."""
    return {"erased_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "dataset": dataset, "reason": reason, "rows_removed": report.rows,
            "bundles_rewritten": report.bundles, "checkpoint_rows_reset": report.buckets}


def append_audit(path: Path, record: dict[str, object]) -> None:
    """Append one JSON line to the audit log."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
