"""Real H&M product photos: Lite0 features separate product types (1-NN, leave one out)."""

from __future__ import annotations

import numpy as np
import pytest
from imagefixtures import compose_features

from recsys.config import as_dict
from recsys.images.encoders import build_encoder
from recsys.images.extract import ExtractSettings, encode_images
from recsys.images.hm_sample import default_hm_dir, hm_articles
from recsys.images.transforms import build_transform

HM = default_hm_dir()


@pytest.mark.hm
@pytest.mark.skipif(not (HM / "articles.csv").is_file(), reason="H&M sample not present")
def test_lite0_nearest_neighbour_finds_the_same_product_type() -> None:
    articles = hm_articles(HM)
    picked = articles[articles["product_type_name"].isin(["Trousers", "Bra", "Sneakers"])]
    picked = picked.groupby("product_type_name").head(8).reset_index(drop=True)
    assert len(picked) == 24
    cfg = compose_features(["device=cpu", "num_workers=0", "batch_size=24"])
    settings = ExtractSettings.from_config(as_dict(cfg))
    result = encode_images(
        HM / "images",
        list(picked["image_path"]),
        build_encoder(cfg.image_encoder),
        build_transform(cfg.image_encoder, train=False),
        settings,
    )
    assert result.ok.all()
    x = result.features / np.linalg.norm(result.features, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    labels = picked["product_type_name"].to_numpy()
    accuracy = float(np.mean(labels[sim.argmax(1)] == labels))
    assert accuracy >= 0.8, accuracy  # chance is about 0.3
