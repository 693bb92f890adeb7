"""Are the image features real? Precision@k of product_type among image nearest neighbours on
the H&M sample, against the chance rate.

Encodes every H&M product image with the configured encoder (default EfficientNet-Lite0 with
the packaged ImageNet weights) through the persistent feature cache, L2-normalises the features,
finds each image's k nearest neighbours by cosine similarity (FAISS, itself excluded) and
reports the share of neighbours with the query's product_type_name. Chance: the same share for
neighbours drawn at random, sum_t n_t (n_t - 1) / (N (N - 1)).

    python scripts/image_neighbours_hm.py [--k 10] [--limit 0] [conf/features.yaml overrides]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from recsys.config import as_dict
from recsys.images.encoders import build_encoder
from recsys.images.extract import ExtractSettings, encode_images
from recsys.images.features import open_feature_cache
from recsys.images.hm_sample import default_hm_dir, hm_articles
from recsys.images.transforms import build_transform
from recsys.runtime import apply_runtime

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"
ATTRIBUTES = ("product_type_name", "product_group_name", "colour_group_name")


def precision_at_k(features: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean share of each row's k cosine nearest neighbours (self excluded) with its label."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    faiss.normalize_L2(x)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, nn = index.search(x, k + 1)
    hits = []
    for row, neighbours in enumerate(nn):
        others = [j for j in neighbours if j != row][:k]
        hits.append(np.mean(labels[others] == labels[row]))
    return float(np.mean(hits))


def chance_rate(labels: np.ndarray) -> float:
    """Expected precision of neighbours drawn uniformly from the other rows."""
    counts = pd.Series(labels).value_counts().to_numpy(dtype=np.float64)
    n = counts.sum()
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="first N articles only (0 = all)")
    parser.add_argument("--hm-dir", type=Path, default=default_hm_dir())
    parser.add_argument("overrides", nargs="*", help="conf/features.yaml overrides")
    args = parser.parse_args()
    if not (args.hm_dir / "articles.csv").is_file():
        sys.exit(f"H&M sample not found at {args.hm_dir} (set RECSYS_HM_DIR)")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="features", overrides=args.overrides)
    apply_runtime(cfg.runtime)  # the app's process settings, runtime.* overrides included
    settings = ExtractSettings.from_config(as_dict(cfg, "features"))
    articles = hm_articles(args.hm_dir, ATTRIBUTES)
    if args.limit:
        articles = articles.iloc[: args.limit]
    encoder = build_encoder(cfg.image_encoder)
    preprocess = build_transform(cfg.image_encoder, train=False)
    cache = open_feature_cache(cfg, encoder)
    start = time.perf_counter()
    result = encode_images(
        args.hm_dir / "images", list(articles["image_path"]), encoder, preprocess, settings, cache
    )
    seconds = time.perf_counter() - start
    ok = result.ok
    print(
        f"{cfg.image_encoder.name} ({encoder.encoder_id}), {len(articles)} H&M images: "
        f"encoded {result.encoded}, cached {result.cached}, failed {len(result.failures)} "
        f"in {seconds:.1f} s"
    )
    print(f"precision@{args.k} among image nearest neighbours (cosine), vs chance:")
    for column in ATTRIBUTES:
        labels = articles[column].to_numpy()[ok]
        p = precision_at_k(result.features[ok], labels, args.k)
        c = chance_rate(labels)
        print(
            f"  {column:20s} precision@{args.k} = {p:.4f}   chance = {c:.4f}   "
            f"lift = {p / c:.1f}x   ({len(set(labels))} classes)"
        )


if __name__ == "__main__":
    main()
