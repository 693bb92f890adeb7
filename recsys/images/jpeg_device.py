"""JPEG decoding on the extraction device: batched ``torchvision.io.decode_jpeg`` (nvJPEG on
CUDA), then the evaluation geometry of :mod:`recsys.images.transforms` (resize the shorter side,
centre-crop) on the device. Decode workers then only read bytes and hash them.

Only files the device decodes to the same upright RGB as the CPU path go there: baseline or
progressive JPEGs in RGB or grayscale, ending in an end-of-image marker, without an EXIF
rotation, within ``max_pixels``; every other file (PNG, CMYK, rotated, truncated, too large, not
an image...) takes the CPU path in the worker, which names the failure.
"""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg

from recsys.errors import ConfigError
from recsys.images.transforms import crop_box

JPEG_DECODES: tuple[str, ...] = ("auto", "cpu", "cuda")
_ORIENTATION = 0x0112


def resolve_jpeg_decode(value: str, device: str) -> bool:
    """Whether JPEGs are decoded on ``device``: ``cuda`` (refused unless the CNN runs on
    CUDA), ``cpu`` (PIL in the decode workers) or ``auto`` (``cuda`` when the device is)."""
    if value not in JPEG_DECODES:
        raise ConfigError(f"jpeg_decode must be one of {JPEG_DECODES}, got {value!r}",
                          column="jpeg_decode")
    on_cuda = device.startswith("cuda")
    if value == "cuda" and not on_cuda:
        raise ConfigError(f"jpeg_decode=cuda decodes on the GPU, but features run on {device}; "
                          f"set jpeg_decode=cpu or auto, or device=cuda", column="jpeg_decode")
    return on_cuda if value == "auto" else value == "cuda"


def device_decodable(data: bytes, max_pixels: int) -> bool:
    """Whether ``data`` is a JPEG the device decodes like the CPU path (module doc); reads the
    header only."""
    if data[:3] != b"\xff\xd8\xff" or not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return False  # no end-of-image marker: nvJPEG decodes a truncated file without an error
    try:
        with Image.open(io.BytesIO(data)) as img:
            return (img.format == "JPEG" and img.mode in ("RGB", "L")
                    and img.width * img.height <= max_pixels
                    and img.getexif().get(_ORIENTATION, 1) == 1)
    except Exception:  # anything odd: the CPU path decodes it or names the failure
        return False


class DeviceJpegDecoder:
    """JPEG bytes -> uint8 ``[size, size, 3]`` pixels on ``device``, as the CPU path's
    ``Preprocess.pixels`` gives them (evaluation geometry: ``resize`` then centre ``size``)."""

    def __init__(self, resize: int, size: int, device: str) -> None:
        self.resize, self.size, self.device = resize, size, torch.device(device)

    def __call__(self, data: list[Tensor]) -> list[Tensor | str]:
        """Pixels of each file, or why it could not be decoded; one batched call when all
        decode, else one call per file."""
        with torch.autocast(self.device.type, enabled=False):
            try:
                images = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
                return [self._geometry(img) for img in images]
            except RuntimeError:
                return [self._one(d) for d in data]

    def _one(self, data: Tensor) -> Tensor | str:
        try:
            image = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
            return self._geometry(image)
        except RuntimeError as err:
            return " ".join(str(err).split())

    def _geometry(self, image: Tensor) -> Tensor:
        """``[3, H, W]`` uint8 -> ``[size, size, 3]`` uint8: the crop box of the CPU path
        (``resize_backend: opencv``) rounded to whole pixels, averaged over pixel areas when
        shrinking (OpenCV's ``INTER_AREA``), bilinear when enlarging."""
        _, height, width = image.shape
        left, top, right, bottom = (round(v) for v in crop_box(width, height, self.resize,
                                                                self.size))
        crop = image[:, top : max(bottom, top + 1), left : max(right, left + 1)].unsqueeze(0)
        if crop.shape[2] > self.size or crop.shape[3] > self.size:  # pixel-area averaging
            out = F.interpolate(crop.float(), size=(self.size, self.size), mode="area")
        else:
            out = F.interpolate(crop.float(), size=(self.size, self.size), mode="bilinear",
                                align_corners=False)
        return out[0].round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)
