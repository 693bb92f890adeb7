"""The H&M sample's product images (articles.csv + images/NNN/<article_id>.jpg), for the
neighbour check and the benchmark. The directory comes from ``RECSYS_HM_DIR`` or
``../shared/data/hm`` beside the repository; it is never copied into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from recsys.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_hm_dir() -> Path:
    """``$RECSYS_HM_DIR`` or ``<repo>/../shared/data/hm``."""
    return Path(os.environ.get("RECSYS_HM_DIR") or REPO_ROOT.parent / "shared" / "data" / "hm")


def hm_articles(hm_dir: Path, columns: tuple[str, ...] = ("product_type_name",)) -> pd.DataFrame:
    """article_id, the requested attribute columns and image_path (relative to ``images/``),
    only for articles whose image file exists."""
    path = hm_dir / "articles.csv"
    if not path.is_file():
        raise DataError("H&M articles.csv not found (set RECSYS_HM_DIR)", file=str(path))
    usecols = ["article_id", *columns]
    try:
        df = pd.read_csv(path, dtype={"article_id": str}, usecols=usecols)
    except ValueError as err:
        raise DataError(f"unreadable articles.csv: {err}", file=str(path)) from None
    df["image_path"] = [f"{a[:3]}/{a}.jpg" for a in df["article_id"]]
    images = hm_dir / "images"
    exists = [(images / p).is_file() for p in df["image_path"]]
    return df[exists].reset_index(drop=True)
