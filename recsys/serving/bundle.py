"""Serving bundle on disk: file names, manifest, checksums and compatibility checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsys.data.fingerprint import file_sha256
from recsys.errors import BundleError

FORMAT = "recsys-bundle"
# 2: user_encoder.json holds the dataset's fitted numeric parameters; 3: item vectors and the
# ablated vectors of the explanations
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
INDEX = "index.faiss"
ITEMS = "items.parquet"
USERS = "users.parquet"
USER_EMBEDDINGS = "user_embeddings.npy"
ITEM_EMBEDDINGS = "item_embeddings.npy"
ABLATIONS = "ablations.npz"
HISTORY = "history.npz"
POPULARITY = "popularity.npy"
USER_TOWER = "user_tower.pt"
USER_ENCODER = "user_encoder.json"
REQUIRED = (INDEX, ITEMS, USERS, USER_EMBEDDINGS, ITEM_EMBEDDINGS, HISTORY, POPULARITY)


def checksums(root: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256": ..., "bytes": ...}}`` for files under ``root``."""
    return {n: {"sha256": file_sha256(root / n), "bytes": (root / n).stat().st_size} for n in names}


def compatible(bundle_version: str, package_version: str) -> bool:
    """Same major version (and the same minor while the major is 0)."""
    def parts(v: str) -> tuple[int, int]:
        nums = [int(p) if p.isdigit() else 0 for p in v.split(".")[:2]] + [0, 0]
        return nums[0], nums[1]

    b, p = parts(bundle_version), parts(package_version)
    return b[0] == p[0] and (b[0] != 0 or b[1] == p[1])


def read_manifest(root: Path) -> dict[str, Any]:
    """The bundle's manifest; a BundleError when it is missing or unreadable."""
    path = Path(root) / MANIFEST
    try:
        if not Path(root).is_dir():
            raise BundleError("bundle directory not found", file=str(root))
        if not path.is_file():
            raise BundleError("not a serving bundle: manifest missing", file=str(path))
    except OSError as err:  # e.g. a name too long for the file system
        raise BundleError(f"bundle directory unusable ({err.strerror})", file=str(root)[:200]) from None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"unreadable manifest ({err})", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise BundleError("manifest is not a JSON object", file=str(path))
    return manifest


def verify(root: Path, package_version: str) -> dict[str, Any]:
    """Check format, version compatibility, presence and checksum of every file; the manifest."""
    root = Path(root)
    manifest = read_manifest(root)
    where = str(root / MANIFEST)
    if manifest.get("format") != FORMAT:
        raise BundleError(f"format is {manifest.get('format')!r}, expected {FORMAT!r}",
                          file=where, column="format")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {manifest.get('format_version')!r} is not supported "
            f"(this recsys reads version {FORMAT_VERSION}); re-export the bundle",
            file=where, column="format_version")
    version = str(manifest.get("package_version", ""))
    if not compatible(version, package_version):
        raise BundleError(
            f"bundle written by recsys {version!r} is incompatible with recsys "
            f"{package_version}; re-export the bundle", file=where, column="package_version")
    files: dict[str, Any] = manifest.get("files") or {}
    for name in REQUIRED:
        if name not in files:
            raise BundleError(f"manifest does not list required file {name!r}", file=where,
                              column="files")
    for name, meta in files.items():
        path = root / name
        if not path.is_file():
            raise BundleError("bundle file missing", file=str(path))
        if file_sha256(path) != meta.get("sha256"):
            raise BundleError("checksum mismatch: the file was modified or corrupted",
                              file=str(path))
    return manifest
