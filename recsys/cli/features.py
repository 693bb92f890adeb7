"""recsys-features: encode a processed dataset's product and social images into CNN features."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.images.features import extract_dataset_features, load_features


def task(cfg: DictConfig) -> None:
    """Run the extraction and print a one-line summary with the features directory."""
    out = extract_dataset_features(Path(cfg.dataset_dir), cfg)
    feats = load_features(out)
    rep = feats.report
    print(
        f"features: {int(feats.item_mask.sum())}/{len(feats.item_mask)} items, "
        f"{len(feats.user_image_features)} social images, dim {feats.dim}, "
        f"encoded {rep['encoded']}, cached {rep['cached']}, failed {rep['failed']}, "
        f"{rep['seconds']} s -> {out}"
    )


def main() -> None:
    run_app("features", task)


if __name__ == "__main__":
    main()
