"""extract_dataset_features / load_features on a tiny processed dataset, and recsys-features."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from imagefixtures import FAST, compose_features
from omegaconf import DictConfig

from recsys.errors import ConfigError, DataError, ImageError
from recsys.images.features import extract_dataset_features, load_features
from recsys.images.pca import PcaProjection

REPO = Path(__file__).resolve().parents[3]


def _cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    return compose_features([*FAST, f"paths.output_dir={tmp_path / 'out'}", *overrides])


def test_tiny_dataset_end_to_end(make_dataset: Callable[..., Path], tmp_path: Path) -> None:
    ds = make_dataset()
    out = extract_dataset_features(ds, _cfg(tmp_path))
    assert out.parent.name == "tiny-f00dfeed1234"
    assert out.is_relative_to(tmp_path / "out" / "features")
    feats = load_features(out)
    assert isinstance(feats.item_features, np.memmap)
    assert feats.item_features.shape == (7, 576) and feats.item_features.dtype == np.float32
    # items 0-4 have images, 5 has none, 6 is a broken file.
    assert feats.item_mask.tolist() == [True] * 5 + [False, False]
    assert not np.asarray(feats.item_features[5:]).any()
    assert np.abs(np.asarray(feats.item_features[:5])).sum(axis=1).min() > 0
    # social images: user 1 gave no consent; user 3 owns two images; user 2 none.
    assert feats.user_image_user_idx.tolist() == [0, 3, 3]
    assert feats.user_image_offsets.tolist() == [0, 1, 1, 1, 3]
    assert feats.user_image_rows.tolist() == [1, 0, 3]
    assert feats.user_images(3).shape == (2, 576) and feats.user_images(2).shape == (0, 576)
    pooled, has = feats.pooled_user_features()
    assert has.tolist() == [True, False, False, True]
    assert np.allclose(pooled[3], np.asarray(feats.user_image_features[1:3]).mean(axis=0))
    report = json.loads((out / "report.json").read_text())
    assert report["items"]["without_image"] == 1 and report["items"]["placeholders"] == 1
    assert report["user_images"]["skipped_no_consent"] == 1
    assert report["encoded"] == 8 and report["cached"] == 0 and report["dim"] == 576
    assert sum(report["failed"].values()) == 1
    assert report["items"]["failures"][0]["file"] == "items/broken.jpg"
    assert report["encoder_id"] == feats.report["encoder_id"]


def test_second_run_is_cached_and_identical(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    ds = make_dataset()
    first = load_features(extract_dataset_features(ds, _cfg(tmp_path)), mmap=False)
    out = extract_dataset_features(ds, _cfg(tmp_path))
    second = load_features(out, mmap=False)
    assert second.report["encoded"] == 0 and second.report["cached"] == 8
    assert np.array_equal(first.item_features, second.item_features)
    assert np.array_equal(first.user_image_features, second.user_image_features)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_consent_can_be_ignored_and_pca_reduces(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    ds = make_dataset()
    out = extract_dataset_features(
        ds, _cfg(tmp_path, "respect_consent=false", "pca.enabled=true", "pca.dim=3")
    )
    feats = load_features(out)
    assert out.name.endswith("-pca3") and feats.dim == 3
    assert feats.user_image_user_idx.tolist() == [0, 1, 3, 3]
    assert not np.asarray(feats.item_features[~np.asarray(feats.item_mask)]).any()
    pca = PcaProjection.load(out / "pca.npz")
    assert pca.components.shape == (3, 576)
    assert feats.report["raw_dim"] == 576 and feats.report["dim"] == 3
    with pytest.raises(ConfigError, match="pca"):
        extract_dataset_features(ds, _cfg(tmp_path, "pca.enabled=true", "pca.dim=50"))


def test_error_mode_stops_on_the_broken_image(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    ds = make_dataset()
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        extract_dataset_features(ds, _cfg(tmp_path, "on_bad_image=error"))
    assert not (tmp_path / "out" / "features" / "tiny-f00dfeed1234").exists()


def test_dataset_problems_are_data_errors(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="manifest"):
        extract_dataset_features(tmp_path / "nothing", _cfg(tmp_path))
    ds = make_dataset()
    import pandas as pd

    items = pd.read_parquet(ds / "items.parquet")
    items.drop(columns=["image_path"]).to_parquet(ds / "items.parquet")
    with pytest.raises(DataError) as err:
        extract_dataset_features(ds, _cfg(tmp_path))
    assert err.value.column == "image_path" and "items.parquet" in str(err.value)


def test_load_features_reports_missing_arrays(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="item_features"):
        load_features(tmp_path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys.cli.features", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_runs_and_maps_errors_to_exit_2(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    ds = make_dataset()
    common = [*FAST, f"paths.output_dir={tmp_path / 'out'}"]
    ok = _cli(f"dataset_dir={ds}", *common, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "features: 5/7 items, 3 social images, dim 576" in ok.stdout
    bad = _cli(f"dataset_dir={ds}", *common, "on_bad_image=error", cwd=REPO)
    assert bad.returncode == 2
    assert "broken.jpg" in bad.stderr and "Traceback" not in bad.stderr
