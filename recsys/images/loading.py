"""Safe image loading: stay inside the data root, refuse bombs, decode fully, return RGB.

Every failure raises :class:`BadImageError` (an ``ImageError``) naming the file, with a short
machine-readable ``reason`` (one of :data:`REASONS`) so callers can count failures by kind.
"""

from __future__ import annotations

import functools
import io
import os
import stat
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from recsys.errors import ImageError

REASONS: tuple[str, ...] = (
    "outside_root",
    "missing",
    "unreadable",
    "empty",
    "too_large",
    "not_image",
    "corrupt",
)


class BadImageError(ImageError):
    """An image that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str, *, file: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}", file=file)


@dataclass(frozen=True)
class LoadSettings:
    """Limits and the background that transparent pixels are composited onto."""

    max_pixels: int
    max_file_bytes: int
    background: tuple[int, int, int]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> LoadSettings:
        bg: Sequence[Any] = cfg["alpha_background"]
        return cls(
            max_pixels=int(cfg["max_pixels"]),
            max_file_bytes=int(cfg["max_file_bytes"]),
            background=(int(bg[0]), int(bg[1]), int(bg[2])),
        )


@functools.lru_cache(maxsize=64)
def _resolved(root: Path) -> Path:
    return root.resolve()


def _inside(root: Path, path: str) -> bool:
    return path.startswith(os.path.join(root, ""))  # root + separator ("/" stays "/")


def _opened_path(fd: int, path: str) -> str:
    """Real path of the file open as ``fd``: what was opened, whatever links said before
    (``/proc/self/fd`` on Linux; elsewhere the path is resolved again)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def read_image_bytes(root: Path, rel: str, settings: LoadSettings) -> tuple[Path, bytes]:
    """Read the raw bytes of the image file ``root / rel`` (no decoding): one open, one fstat.

    Anything leaving ``root`` is refused: ``..`` or absolute paths before opening, links
    (of the file or of any folder on its way) by checking the real path of the opened file.
    """
    root = _resolved(root)
    path = os.path.normpath(os.path.join(root, rel))
    if not _inside(root, path):
        raise BadImageError("outside_root", f"path escapes the image root {root}", file=rel)
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if not _inside(root, os.path.realpath(path)):  # a dangling link out of the root
            raise BadImageError("outside_root", f"path escapes the image root {root}",
                                file=rel) from None
        raise BadImageError("missing", "file not found", file=path) from None
    except OSError as err:
        raise BadImageError("unreadable", str(err), file=path) from None
    try:
        if not _inside(root, _opened_path(fd, path)):
            raise BadImageError("outside_root", f"path escapes the image root {root}", file=rel)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadImageError("missing", "not a regular file", file=path)
        if info.st_size == 0:
            raise BadImageError("empty", "zero-byte file", file=path)
        if info.st_size > settings.max_file_bytes:
            raise BadImageError(
                "too_large",
                f"{info.st_size} bytes > max_file_bytes {settings.max_file_bytes}",
                file=path,
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return Path(path), handle.read()
    except OSError as err:
        raise BadImageError("unreadable", str(err), file=path) from None
    finally:
        os.close(fd)


def decode_image(
    data: bytes, name: str, settings: LoadSettings, draft_size: int | None = None
) -> Image.Image:
    """Decode bytes to an upright RGB image (EXIF orientation applied, alpha composited).

    ``draft_size``: let JPEG decoding shrink by 1/2, 1/4 or 1/8 while both sides stay at least
    that large (big photos decode many times faster; small ones are unaffected).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > settings.max_pixels:
                raise BadImageError(
                    "too_large",
                    f"{width}x{height} pixels > max_pixels {settings.max_pixels}",
                    file=name,
                )
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img.load()
            ImageOps.exif_transpose(img, in_place=True)  # no copy when upright
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError("too_large", str(err), file=name) from None
    except UnidentifiedImageError:
        raise BadImageError("not_image", "not a recognised image format", file=name) from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... on bad data
        raise BadImageError("corrupt", f"cannot decode: {err}", file=name) from None
    return to_rgb(img, settings.background)


def to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Grayscale, CMYK, palette and 16-bit images to RGB; transparency onto ``background``."""
    has_alpha = img.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 256)).convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def load_image(root: Path, rel: str, settings: LoadSettings) -> Image.Image:
    """Read and decode ``root / rel`` into an RGB image, or raise :class:`BadImageError`."""
    path, data = read_image_bytes(root, rel, settings)
    return decode_image(data, str(path), settings)
