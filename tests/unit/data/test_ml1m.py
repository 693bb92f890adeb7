"""MovieLens-1M through `data=ml1m`: RecBole's protocol (ratings >= 3, 10-core, per-user 8:1:1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset
from recsys.data.split import _recbole_counts
from recsys.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
ML1M = Path(os.environ.get("RECSYS_ML1M_DIR", ROOT.parent / "shared" / "data" / "ml1m"))

pytestmark = [pytest.mark.ml1m, pytest.mark.skipif(not (ML1M / "ratings.csv").is_file(), reason="no ML-1M")]


def _cfg(tmp_path: Path, *overrides: str) -> object:
    with initialize_config_dir(config_dir=str(ROOT / "recsys" / "conf"), version_base="1.3"):
        return compose("data", overrides=["data=ml1m", f"paths.ml1m_dir={ML1M}",
                                          f"paths.output_dir={tmp_path}", *overrides])


def test_ml1m_reproduces_recbole_protocol(tmp_path: Path) -> None:
    ds = load_dataset(build_dataset(_cfg(tmp_path)))  # type: ignore[arg-type]
    rows = pd.concat([ds.train, ds.val, ds.test])
    assert len(rows) == 834_449  # RecBole's ML-1M after rating >= 3 and the 10-core filter
    assert (ds.n_users, ds.n_items) == (6_033, 3_123)
    assert rows.groupby("user_idx").size().min() >= 10 and rows.groupby("item_idx").size().min() >= 10
    assert rows["positive"].all() and rows["timestamp"].isna().all()
    assert ds.manifest["has_timestamps"] is False
    split = ds.manifest["split"]
    assert (split["kind"], split["ratios"]) == ("per_user_random", [0.8, 0.1, 0.1])
    per_user = pd.concat([getattr(ds, s).groupby("user_idx").size().rename(s) for s in ("train", "val", "test")],
                         axis=1).fillna(0).to_numpy()
    assert (per_user == _recbole_counts(per_user.sum(axis=1).astype(int), np.array([0.8, 0.1, 0.1]))).all()
    items = ds.items
    with_poster = items["image_path"].notna()
    assert 0.8 < with_poster.mean() < 1.0  # missing posters are no error
    assert (ds.image_root / items.loc[with_poster, "image_path"].iloc[0]).is_file()
    assert "genres_multi" in items.columns and items["genres_multi"].map(len).max() > 1
    assert {"gender_idx", "occupation_idx", "age_z"} <= set(ds.users.columns)


def test_ml1m_time_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_dataset(_cfg(tmp_path, "split=temporal"))  # type: ignore[arg-type]
    assert "split.kind=temporal" in str(info.value) and str(info.value.file).endswith("ratings.csv")
