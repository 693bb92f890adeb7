"""Per-backbone preprocessing, read from the encoder config, in two halves:

* ``pixels`` (PIL RGB -> uint8 ``[H, W, 3]`` tensor): geometry only, cheap to run in DataLoader
  workers and 4x smaller to ship than floats. Evaluation resizes the shorter side to
  ``resize_size`` and centre-crops ``image_size`` in one PIL resample (``ResizeCenterCrop``);
  training takes a random resized crop (area ``train_scale``) and a horizontal flip (``hflip``).
* ``normalize`` (uint8 ``[..., H, W, 3]`` -> float ``[..., 3, H, W]``): scale to [0, 1], then
  ``(x - mean) / std`` (Lite0: 0.5 / 0.5, i.e. [-1, 1]). A batch comes out channels_last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

from recsys.config import as_dict
from recsys.errors import ConfigError

PREPROCESS_KEYS: tuple[str, ...] = ("image_size", "resize_size", "interpolation", "mean", "std")
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


class ResizeCenterCrop:
    """Resize the shorter side to ``resize`` then centre-crop ``size``, as one PIL resample
    over the crop box (same sampling as torchvision's Resize + CenterCrop, half the work)."""

    def __init__(self, resize: int, size: int, resample: Image.Resampling) -> None:
        self.resize, self.size, self.resample = resize, size, resample

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        if w <= h:
            rw, rh = self.resize, int(self.resize * h / w)
        else:
            rw, rh = int(self.resize * w / h), self.resize
        left, top = round((rw - self.size) / 2), round((rh - self.size) / 2)
        sx, sy = w / rw, h / rh
        box = (left * sx, top * sy, (left + self.size) * sx, (top + self.size) * sy)
        return img.resize((self.size, self.size), self.resample, box=box)


def to_pixels(img: Image.Image) -> Tensor:
    """PIL RGB -> uint8 tensor ``[H, W, 3]``."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())


class Normalizer:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` with ``(x / 255 - mean) / std``."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        m, s = torch.tensor(mean), torch.tensor(std)
        self.scale = (1.0 / (255.0 * s)).view(3, 1, 1)
        self.shift = (-m / s).view(3, 1, 1)

    def __call__(self, pixels: Tensor) -> Tensor:
        x = pixels.movedim(-1, -3).to(torch.float32, copy=True)  # keeps channels_last strides
        return x.mul_(self.scale.to(x.device)).add_(self.shift.to(x.device))  # in place: one pass less


class _Pixels:
    """Geometry then :func:`to_pixels` (a class, not a lambda, so workers can pickle it)."""

    def __init__(self, geometry: Callable[[Image.Image], Image.Image]) -> None:
        self.geometry = geometry

    def __call__(self, img: Image.Image) -> Tensor:
        return to_pixels(self.geometry(img))


@dataclass(frozen=True)
class Preprocess:
    """``pixels`` then ``normalize``; calling it maps PIL RGB -> float ``[3, H, W]``."""

    pixels: Callable[[Image.Image], Tensor]
    normalize: Normalizer
    draft_size: int

    def __call__(self, img: Image.Image) -> Tensor:
        return self.normalize(self.pixels(img))


def build_transform(encoder_cfg: DictConfig | Mapping[str, Any], train: bool) -> Preprocess:
    """The backbone's preprocessing; ``train`` adds random crops and flips."""
    cfg = as_dict(encoder_cfg, "image_encoder")
    size = int(cfg["image_size"])
    resample = _resample(cfg)
    resize = int(cfg.get("resize_size") or size)
    if resize < size:
        raise ConfigError(f"resize_size {resize} < image_size {size}", column="resize_size")
    normalize = Normalizer(_stats(cfg, "mean"), _stats(cfg, "std"))
    if not train:
        return Preprocess(_Pixels(ResizeCenterCrop(resize, size, resample)), normalize, resize)
    scale = tuple(float(s) for s in cfg.get("train_scale", (0.5, 1.0)))
    augment = v2.Compose(
        [
            v2.RandomResizedCrop(
                size, scale=scale, interpolation=_INTERP[str(cfg["interpolation"])]
            ),
            v2.RandomHorizontalFlip(float(cfg.get("hflip", 0.5))),
        ]
    )
    return Preprocess(_Pixels(augment), normalize, size)


def preprocess_id(encoder_cfg: DictConfig | Mapping[str, Any], extra: Mapping[str, Any]) -> str:
    """Short digest of everything that changes evaluation pixels (part of the cache key)."""
    cfg = as_dict(encoder_cfg, "image_encoder")
    settings = {k: cfg.get(k) for k in PREPROCESS_KEYS} | {str(k): v for k, v in extra.items()}
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


_INTERP = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
}


def _resample(cfg: Mapping[str, Any]) -> Image.Resampling:
    name = str(cfg.get("interpolation", "bilinear"))
    if name not in _RESAMPLE:
        raise ConfigError(
            f"unknown interpolation {name!r}; expected one of {sorted(_RESAMPLE)}",
            column="interpolation",
        )
    return _RESAMPLE[name]


def _stats(cfg: Mapping[str, Any], key: str) -> list[float]:
    values = [float(v) for v in cfg[key]]
    if len(values) != 3 or (key == "std" and min(values) <= 0):
        raise ConfigError(f"{key} must be 3 numbers (std > 0), got {values}", column=key)
    return values
