"""Safe loading: every kind of bad input is a BadImageError naming the file; odd modes -> RGB."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from imagefixtures import write_photo
from PIL import Image

from recsys.errors import ImageError
from recsys.images.loading import BadImageError, LoadSettings, load_image

SETTINGS = LoadSettings(max_pixels=40_000_000, max_file_bytes=5_000_000, background=(255, 255, 255))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring a gigantic 1-bit image, in a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _expect(root: Path, rel: str, reason: str, settings: LoadSettings = SETTINGS) -> None:
    with pytest.raises(BadImageError) as err:
        load_image(root, rel, settings)
    assert isinstance(err.value, ImageError)
    assert err.value.reason == reason
    assert Path(rel).name in str(err.value) and err.value.file is not None


def test_good_jpeg_loads_as_rgb(tmp_path: Path) -> None:
    write_photo(tmp_path / "a.jpg", seed=1, size=(20, 30))
    img = load_image(tmp_path, "a.jpg", SETTINGS)
    assert img.mode == "RGB" and img.size == (20, 30)


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path, "nowhere/none.jpg", "missing")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "adir.jpg").mkdir()
    _expect(tmp_path, "adir.jpg", "missing")


@pytest.mark.timeout(10)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    _expect(tmp_path, "pipe.jpg", "missing")


def test_symlinked_folder_inside_the_root_is_followed(tmp_path: Path) -> None:
    write_photo(tmp_path / "real" / "a.jpg", seed=1)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert load_image(tmp_path, "alias/a.jpg", SETTINGS).size == load_image(
        tmp_path, "real/a.jpg", SETTINGS
    ).size


def test_folder_swapped_for_an_outside_link_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_photo(outside / "a.jpg", seed=2)
    root.mkdir()
    _expect(root, "sub/a.jpg", "missing")
    (root / "sub").symlink_to(outside)  # nothing about the earlier call may be remembered
    _expect(root, "sub/a.jpg", "outside_root")
    (root / "gone.jpg").symlink_to(outside / "nothing.jpg")
    _expect(root, "gone.jpg", "outside_root")


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    _expect(tmp_path, "empty.jpg", "empty")


def test_non_image_file(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("this is a shopping list, not a photo\n" * 20)
    _expect(tmp_path, "notes.jpg", "not_image")


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = write_photo(tmp_path / "full.jpg", seed=2, size=(64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _expect(tmp_path, "cut.jpg", "corrupt")


def test_corrupt_jpeg_body(tmp_path: Path) -> None:
    data = bytearray(write_photo(tmp_path / "full.jpg", seed=3, size=(64, 64)).read_bytes())
    data[20:] = bytes(len(data) - 20)  # keep the SOI/APP0 header, zero everything else
    (tmp_path / "zeroed.jpg").write_bytes(bytes(data))
    with pytest.raises(BadImageError) as err:
        load_image(tmp_path, "zeroed.jpg", SETTINGS)
    assert err.value.reason in ("corrupt", "not_image") and "zeroed.jpg" in str(err.value)


def test_decompression_bomb_header(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_bomb_png(100_000, 100_000))
    assert (tmp_path / "bomb.png").stat().st_size < 200
    _expect(tmp_path, "bomb.png", "too_large")


def test_configured_pixel_and_byte_limits(tmp_path: Path) -> None:
    write_photo(tmp_path / "big.jpg", seed=4, size=(120, 100))
    small = LoadSettings(max_pixels=5_000, max_file_bytes=5_000_000, background=(0, 0, 0))
    _expect(tmp_path, "big.jpg", "too_large", small)
    tiny_files = LoadSettings(max_pixels=40_000_000, max_file_bytes=100, background=(0, 0, 0))
    _expect(tmp_path, "big.jpg", "too_large", tiny_files)


@pytest.mark.parametrize("rel", ["../outside.jpg", "sub/../../outside.jpg"])
def test_relative_escape_is_refused(tmp_path: Path, rel: str) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    write_photo(tmp_path / "outside.jpg", seed=5)
    _expect(root, rel, "outside_root")


def test_absolute_path_and_symlink_escape_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = write_photo(tmp_path / "secret.jpg", seed=6)
    _expect(root, str(outside), "outside_root")
    (root / "link.jpg").symlink_to(outside)
    _expect(root, "link.jpg", "outside_root")


def test_grayscale_png_becomes_rgb(tmp_path: Path) -> None:
    Image.new("L", (10, 6), 77).save(tmp_path / "g.png")
    img = load_image(tmp_path, "g.png", SETTINGS)
    assert img.mode == "RGB" and img.getpixel((3, 3)) == (77, 77, 77)


def test_sixteen_bit_grayscale_png_becomes_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((6, 10), 40000, dtype=np.uint16)).save(tmp_path / "g16.png")
    img = load_image(tmp_path, "g16.png", SETTINGS)
    assert img.mode == "RGB" and img.getpixel((2, 2)) == (156, 156, 156)  # 40000 / 256


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (255, 0, 0, 0)).save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as raw:
        assert raw.mode == "CMYK"
    img = load_image(tmp_path, "c.jpg", SETTINGS)
    r, g, b = img.getpixel((8, 8))  # type: ignore[misc]
    assert img.mode == "RGB" and r < 20 and g > 235 and b > 235  # cyan


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_alpha_is_composited_on_the_background(tmp_path: Path, mode: str) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (200, 0, 0, 255))
    if mode == "LA":
        img = rgba.convert("LA")
    elif mode == "P":
        img = rgba.convert("P")
        img.info["transparency"] = img.getpixel((0, 0))
    else:
        img = rgba
    img.save(tmp_path / "t.png", transparency=img.info.get("transparency"))
    out = load_image(tmp_path, "t.png", SETTINGS)
    assert out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 255, 255)  # transparent -> white background
    assert out.getpixel((1, 1)) != (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (20, 10), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    (tmp_path / "rot.jpg").write_bytes(buf.getvalue())
    assert load_image(tmp_path, "rot.jpg", SETTINGS).size == (10, 20)
