"""Per-backbone preprocessing, read from the encoder config, in two halves:

* ``pixels`` (PIL RGB -> uint8 ``[H, W, 3]`` tensor): geometry only, cheap to run in DataLoader
  workers and 4x smaller to ship than floats. Evaluation resizes the shorter side to
  ``resize_size`` and centre-crops ``image_size`` in one resample of the crop box, by OpenCV
  (``resize_backend: opencv``, ~10x faster) or PIL (``pil``, torchvision's exact sampling);
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

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor
from torchvision.transforms import v2

from recsys.config import as_dict
from recsys.errors import ConfigError

PREPROCESS_KEYS: tuple[str, ...] = (
    "image_size", "resize_size", "interpolation", "resize_backend", "mean", "std"
)
RESIZE_BACKENDS: tuple[str, ...] = ("opencv", "pil")
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
_CV_INTER = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def crop_box(width: int, height: int, resize: int, size: int) -> tuple[float, ...]:
    """Source box (left, top, right, bottom) that resizing the shorter side to ``resize`` and
    centre-cropping ``size`` x ``size`` samples from a ``width`` x ``height`` image."""
    if width <= height:
        rw, rh = resize, int(resize * height / width)
    else:
        rw, rh = int(resize * width / height), resize
    left, top = round((rw - size) / 2), round((rh - size) / 2)
    sx, sy = width / rw, height / rh
    return (left * sx, top * sy, (left + size) * sx, (top + size) * sy)


class ResizeCenterCrop:
    """Resize the shorter side to ``resize`` then centre-crop ``size``, as one PIL resample
    over the crop box (same sampling as torchvision's Resize + CenterCrop, half the work)."""

    def __init__(self, resize: int, size: int, resample: Image.Resampling) -> None:
        self.resize, self.size, self.resample = resize, size, resample

    def __call__(self, img: Image.Image) -> Image.Image:
        box = crop_box(*img.size, self.resize, self.size)
        return img.resize((self.size, self.size), self.resample, box=box)  # type: ignore[arg-type]


class CvResizeCenterCrop:
    """The same crop box rounded to whole source pixels, resampled by OpenCV: ``interpolation``
    when enlarging, ``INTER_AREA`` (pixel-area averaging, i.e. antialiased) when shrinking."""

    def __init__(self, resize: int, size: int, interpolation: int) -> None:
        self.resize, self.size, self.interpolation = resize, size, interpolation

    def __call__(self, img: Image.Image) -> np.ndarray:
        left, top, right, bottom = (round(v) for v in crop_box(*img.size, self.resize, self.size))
        crop = np.asarray(img)[top : max(bottom, top + 1), left : max(right, left + 1)]
        shrink = crop.shape[0] > self.size or crop.shape[1] > self.size
        inter = cv2.INTER_AREA if shrink else self.interpolation
        return cv2.resize(crop, (self.size, self.size), interpolation=inter)


def to_pixels(img: Image.Image | np.ndarray) -> Tensor:
    """PIL RGB or an ``[H, W, 3]`` array -> uint8 tensor ``[H, W, 3]`` (copied only if read-only)."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


class Normalizer:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` with ``(x / 255 - mean) / std``.

    Works on rows of ``W * 3`` values against per-channel constants tiled along a row, so the
    inner loop is long and vectorised (broadcasting ``[3, 1, 1]`` over channels-last pixels
    runs an inner loop of 3): about 4x faster on CPU.
    """

    def __init__(self, mean: list[float], std: list[float]) -> None:
        m, s = torch.tensor(mean), torch.tensor(std)
        self.scale, self.shift = 1.0 / (255.0 * s), -m / s
        self._rows: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    def __call__(self, pixels: Tensor) -> Tensor:
        width = pixels.shape[-2]
        scale, shift = self._tiled(width, pixels.device)
        out = pixels.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
        rows = out.view(-1, width * 3)
        rows.mul_(scale).add_(shift)
        return out.movedim(-1, -3)  # batches come out channels_last

    def _tiled(self, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (width, str(device))
        if key not in self._rows:
            self._rows[key] = (self.scale.repeat(width).to(device),
                               self.shift.repeat(width).to(device))
        return self._rows[key]


class _Pixels:
    """Geometry then :func:`to_pixels` (a class, not a lambda, so workers can pickle it)."""

    def __init__(self, geometry: Callable[[Image.Image], Image.Image | np.ndarray]) -> None:
        self.geometry = geometry

    def __call__(self, img: Image.Image) -> Tensor:
        return to_pixels(self.geometry(img))


@dataclass(frozen=True)
class Preprocess:
    """``pixels`` then ``normalize``; calling it maps PIL RGB -> float ``[3, H, W]``.
    ``eval_crop``: (resize, size) of the evaluation geometry (None for training's)."""

    pixels: Callable[[Image.Image], Tensor]
    normalize: Normalizer
    draft_size: int
    eval_crop: tuple[int, int] | None = None

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
        return Preprocess(_Pixels(_eval_geometry(cfg, resize, size, resample)), normalize, resize,
                          (resize, size))
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


def _eval_geometry(
    cfg: Mapping[str, Any], resize: int, size: int, resample: Image.Resampling
) -> Callable[[Image.Image], Image.Image | np.ndarray]:
    backend = str(cfg.get("resize_backend", "pil"))
    if backend not in RESIZE_BACKENDS:
        raise ConfigError(
            f"unknown resize_backend {backend!r}; expected one of {RESIZE_BACKENDS}",
            column="resize_backend",
        )
    if backend == "pil":
        return ResizeCenterCrop(resize, size, resample)
    return CvResizeCenterCrop(resize, size, _CV_INTER[str(cfg.get("interpolation", "bilinear"))])


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
