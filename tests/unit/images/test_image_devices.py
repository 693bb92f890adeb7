"""Image features on CUDA equal the CPU ones: fp32 within float tolerance (TF32 off), bf16
autocast with channels-last for the benchmark's EfficientNet-Lite0 at 224 px within bf16's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from imagefixtures import FAST, compose_features

from recsys.config import as_dict
from recsys.images.encoders import build_encoder
from recsys.images.extract import ExtractSettings, encode_images
from recsys.images.transforms import build_transform

GOOD = [f"items/p{i}.jpg" for i in range(6)]


def features(root: Path, *overrides: str) -> np.ndarray:
    """Features of the six photos; ``overrides`` replace FAST's values of the same keys."""
    keys = {o.split("=")[0] for o in overrides}
    cfg = compose_features([*(o for o in FAST if o.split("=")[0] not in keys), *overrides])
    result = encode_images(root, GOOD, build_encoder(cfg.image_encoder),
                           build_transform(cfg.image_encoder, train=False),
                           ExtractSettings.from_config(as_dict(cfg)), None)
    assert result.ok.all()
    return result.features


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


@pytest.mark.cuda
def test_fp32_cuda_features_equal_cpu(image_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cpu = features(image_root, "amp_bf16=false")
    gpu = features(image_root, "device=cuda", "amp_bf16=false", "num_workers=1")
    scale = float(np.abs(cpu).max())
    assert np.allclose(gpu, cpu, atol=1e-4 * scale, rtol=1e-3)


@pytest.mark.cuda
def test_lite0_bf16_channels_last_cuda_features_match_cpu(image_root: Path) -> None:
    lite0 = ("image_encoder=efficientnet_lite0", "image_encoder.image_size=224",
             "image_encoder.resize_size=256")  # the benchmark's model and size
    cpu = features(image_root, *lite0, "amp_bf16=false", "channels_last=false")
    gpu = features(image_root, *lite0, "device=cuda", "amp_bf16=true", "channels_last=true",
                   "num_workers=1")
    assert gpu.shape == cpu.shape and cosine(cpu, gpu).min() > 0.98
