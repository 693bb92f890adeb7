"""JPEG decoding on the extraction device (``jpeg_decode``): the config key, which files go to
the device, and features equal to the CPU path's within resampling tolerance (CPU here through
torchvision's decoder on the CPU device; nvJPEG with ``-m cuda``)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from imagefixtures import FAST, compose_features
from PIL import Image

from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.images.encoders import build_encoder
from recsys.images.extract import EncodeResult, ExtractSettings, encode_images
from recsys.images.jpeg_device import device_decodable

SIZES = [(24, 36), (300, 200), (640, 480), (90, 90)]


@pytest.fixture()
def mixed_root(tmp_path: Path) -> Path:
    """JPEGs of several sizes (enlarged and shrunk), a grayscale JPEG, a PNG, an EXIF-rotated
    JPEG (those two decode on the CPU) and a JPEG whose data after the header is broken."""
    root = tmp_path / "images"
    root.mkdir()
    for i, size in enumerate(SIZES):
        _smooth_photo(root / f"p{i}.jpg", seed=i, size=size)
    Image.open(root / "p1.jpg").convert("L").save(root / "gray.jpg", quality=90)
    Image.open(root / "p2.jpg").save(root / "p2.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(root / "p1.jpg").save(root / "rotated.jpg", quality=90, exif=exif)
    data = (root / "p2.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 3])
    return root


def _smooth_photo(path: Path, seed: int, size: tuple[int, int]) -> None:
    """A photo-like JPEG: smooth colour gradients and shapes plus mild noise (i.i.d. pixel noise
    alone is the worst case for two resamplers and says little about real pictures)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    phase = rng.uniform(0, 6, size=3)
    freq = rng.uniform(2, 8, size=3)
    channels = [128 + 90 * np.sin(freq[c] * (x + y * (c + 1) / 3) + phase[c]) for c in range(3)]
    pixels = np.stack(channels, -1) + rng.normal(0, 4, size=(h, w, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


GOOD = ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "gray.jpg", "p2.png", "rotated.jpg"]


def _settings(*overrides: str) -> ExtractSettings:
    return ExtractSettings.from_config(as_dict(compose_features([*FAST, *overrides])))


def _encode(root: Path, paths: list[str], settings: ExtractSettings) -> EncodeResult:
    cfg = compose_features(FAST)
    torch.manual_seed(0)
    encoder = build_encoder(cfg.image_encoder)
    from recsys.images.transforms import build_transform

    return encode_images(root, paths, encoder, build_transform(cfg.image_encoder, train=False),
                         settings, None)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def test_jpeg_decode_key_on_a_cpu_device() -> None:
    assert _settings().device_jpeg is False  # default: PIL in the workers
    assert _settings("jpeg_decode=auto").device_jpeg is False  # auto falls back to the CPU
    with pytest.raises(ConfigError, match=r"jpeg_decode=cuda decodes on the GPU, but features "
                                          r"run on cpu") as err:
        _settings("jpeg_decode=cuda")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="jpeg_decode must be one of"):
        _settings("jpeg_decode=nvjpeg")


def test_which_files_the_device_decodes(mixed_root: Path) -> None:
    def ok(name: str, max_pixels: int = 10**8) -> bool:
        return device_decodable((mixed_root / name).read_bytes(), max_pixels)

    assert ok("p0.jpg") and ok("gray.jpg")
    assert not ok("cut.jpg")  # a fine header but no end-of-image marker (nvJPEG would decode it)
    assert ok("p0.jpg") is device_decodable((mixed_root / "p0.jpg").read_bytes() + b"\x00\n", 10**8)
    assert not ok("p2.png") and not ok("rotated.jpg") and not ok("p2.jpg", max_pixels=1000)
    assert not device_decodable(b"\xff\xd8\xff\xe0 not really a jpeg", 10**8)


def _device_vs_cpu(root: Path, device: str, *overrides: str) -> None:
    cpu = _encode(root, GOOD, _settings(*overrides))
    on_device = dataclasses.replace(_settings(*overrides), device=device, device_jpeg=True)
    got = _encode(root, [*GOOD, "cut.jpg"], on_device)
    assert cpu.ok.all() and got.ok.tolist() == [True] * len(GOOD) + [False]
    assert [(f.file, f.reason) for f in got.failures] == [("cut.jpg", "corrupt")]
    assert not got.features[-1].any()
    similarity = _cosine(cpu.features, got.features[:-1])
    assert similarity.min() > 0.998, similarity
    # files decoded on the CPU either way give the very same features
    np.testing.assert_allclose(got.features[5:7], cpu.features[5:7], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("workers", ["num_workers=0", "num_workers=1"])
def test_device_decoding_path_on_the_cpu_matches_pil(mixed_root: Path, workers: str) -> None:
    """The batched path (torchvision's decoder, geometry on the device) on the CPU device."""
    _device_vs_cpu(mixed_root, "cpu", workers)


@pytest.mark.cuda
def test_nvjpeg_features_match_the_cpu_path(mixed_root: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    assert _settings("device=cuda", "jpeg_decode=auto").device_jpeg
    _device_vs_cpu(mixed_root, "cuda", "amp_bf16=false", "num_workers=1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_jpeg_decode_cuda_without_cuda_prints_one_line_and_exits_2(
    make_dataset: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "recsys.cli.features", f"dataset_dir={make_dataset()}",
                           *FAST, f"paths.output_dir={out}", "jpeg_decode=cuda"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "jpeg_decode=cuda" in lines[0]
    assert not (out / "features").exists()  # nothing written
