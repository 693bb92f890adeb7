"""``recsys-export model.checkpoint=... index=ivf_flat``: write a serving bundle."""

from __future__ import annotations

import json

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.serving.bundle import MANIFEST
from recsys.serving.stage import run_export


def task(cfg: DictConfig) -> None:
    """Export and print the bundle path with its measured ANN recall."""
    out = run_export(cfg)
    manifest = json.loads((out / MANIFEST).read_text())
    recall = manifest["ann_recall"]
    print(f"bundle: {out} ({manifest['index']['factory']}, {manifest['metric']}, "
          f"ANN recall@{recall['k']}={recall['recall']:.4f} with {recall['params']})")


def check_index(cfg: DictConfig) -> None:
    """``index.device=cuda`` without a GPU-enabled faiss stops before the model is embedded."""
    from recsys.retrieval.faiss_device import check_placement

    check_placement(str(cfg.index.get("device", "cpu")), bool(cfg.index.get("fallback", False)))


def main() -> None:
    run_app("export", task, check_index)


if __name__ == "__main__":
    main()
