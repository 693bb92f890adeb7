"""Bundle export and loading: manifest, checksums, atomic writes, refusals of bad bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving_fixtures import ToyModel, export_settings

from recsys.data.fingerprint import file_sha256
from recsys.errors import BundleError, ConfigError, ModelError
from recsys.evaluation.toy import ToyDataset
from recsys.retrieval.index_spec import load_spec
from recsys.serving import Recommender, export_bundle
from recsys.serving import bundle as B


def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))


def test_manifest_records_everything(bundle_dir: Path) -> None:
    manifest = json.loads((bundle_dir / B.MANIFEST).read_text())
    assert manifest["format"] == B.FORMAT and manifest["format_version"] == B.FORMAT_VERSION
    for key in ("package_version", "created_at", "config_hash", "data_fingerprint"):
        assert manifest[key]
    assert manifest["embedding_dim"] == 8 and manifest["metric"] == "ip"
    assert manifest["similarity"] == "cosine"
    assert manifest["index"]["factory"] == "Flat" and manifest["n_items"] == 80
    assert manifest["ann_recall"]["recall"] == 1.0 and manifest["ann_recall"]["k"] == 10
    listed = set(manifest["files"])
    on_disk = {p.name for p in bundle_dir.iterdir()} - {B.MANIFEST}
    assert listed == on_disk and B.USER_TOWER in listed and B.USER_ENCODER in listed
    for name, meta in manifest["files"].items():
        assert meta["sha256"] == file_sha256(bundle_dir / name)
    assert [p.name for p in bundle_dir.parent.iterdir()] == [bundle_dir.name]


def test_missing_file_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = copy(bundle_dir, tmp_path)
    (root / B.USER_EMBEDDINGS).unlink()
    with pytest.raises(BundleError, match="bundle file missing") as err:
        Recommender.load(root)
    assert B.USER_EMBEDDINGS in str(err.value)
    with pytest.raises(BundleError, match="manifest missing"):
        Recommender.load(tmp_path)
    with pytest.raises(BundleError, match="not found"):
        Recommender.load(tmp_path / "nowhere")


def test_corrupted_file_fails_its_checksum(bundle_dir: Path, tmp_path: Path) -> None:
    root = copy(bundle_dir, tmp_path)
    data = bytearray((root / B.INDEX).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / B.INDEX).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch") as err:
        Recommender.load(root)
    assert B.INDEX in str(err.value)


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("package_version", "7.0.0", "incompatible"),
    ("format_version", 99, "format version"),
    ("format", "something-else", "expected 'recsys-bundle'"),
])
def test_version_mismatch_is_refused(bundle_dir: Path, tmp_path: Path, key: str, value: object,
                                     needle: str) -> None:
    root = copy(bundle_dir, tmp_path)
    manifest = json.loads((root / B.MANIFEST).read_text())
    manifest[key] = value
    (root / B.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=needle):
        Recommender.load(root)


def test_inconsistent_parts_are_refused(bundle_dir: Path, tmp_path: Path) -> None:
    root = copy(bundle_dir, tmp_path)
    manifest = json.loads((root / B.MANIFEST).read_text())
    manifest["metric"] = "l2"
    (root / B.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="index metric"):
        Recommender.load(root)
    (root / B.MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="unreadable manifest"):
        Recommender.load(root)


def test_version_compatibility_rule() -> None:
    assert B.compatible("0.1.0", "0.1.5") and not B.compatible("0.1.0", "0.2.0")
    assert B.compatible("1.2.0", "1.4.1") and not B.compatible("1.2.0", "2.0.0")


def test_export_refuses_mismatched_metric_and_keeps_old_bundle(
    toy_ds: ToyDataset, toy_model: ToyModel, bundle_dir: Path, tmp_path: Path
) -> None:
    root = copy(bundle_dir, tmp_path)
    before = (root / B.MANIFEST).read_text()
    with pytest.raises(ConfigError, match="does not rank like"):
        export_bundle(toy_model, toy_ds, load_spec("flat", metric="l2"),
                      root, export_settings(), {})
    assert (root / B.MANIFEST).read_text() == before


def test_export_without_tower_and_bad_tower(toy_ds: ToyDataset, toy_model: ToyModel,
                                            tmp_path: Path) -> None:
    out = export_bundle(toy_model, toy_ds, load_spec("hnsw", factory="HNSW8"),
                        tmp_path / "b", export_settings(user_tower=False), {})
    manifest = json.loads((out / B.MANIFEST).read_text())
    assert manifest["user_tower"] is None and B.USER_TOWER not in manifest["files"]
    assert 0.0 < manifest["ann_recall"]["recall"] <= 1.0
    rec = Recommender.load(out, unknown_user="cold")
    assert rec.recommend("ghost", k=3)["item_idx"].tolist() == list(
        np.argsort(-np.load(out / B.POPULARITY), kind="stable")[:3])
    popular = list(np.argsort(-np.load(out / B.POPULARITY), kind="stable"))
    first = str(rec.items["item_id"].iloc[popular[0]])
    # a new user without a tower to embed it: the popularity ranking without its history
    assert rec.recommend({"age": 30, "history": [first]}, k=3)["item_idx"].tolist() == popular[1:4]
    with pytest.raises(ConfigError, match="no user tower"):
        rec.embed([{"age": 30}])

    class Wrong(ToyModel):
        def user_tower_for_export(self) -> object:
            return lambda *a: a  # not a module

    with pytest.raises(ModelError, match="TorchScript"):
        export_bundle(Wrong(toy_ds), toy_ds, load_spec("flat"),
                      tmp_path / "c", export_settings(), {})
    assert not (tmp_path / "c").exists()
