"""build_transform: per-backbone geometry and normalisation from config."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from imagefixtures import compose_features
from PIL import Image
from torchvision.transforms import v2

from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.images.transforms import (
    CvResizeCenterCrop,
    ResizeCenterCrop,
    build_transform,
    preprocess_id,
)


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_lite0_eval_transform_maps_to_minus_one_one() -> None:
    cfg = compose_features([]).image_encoder
    tf = build_transform(cfg, train=False)
    white = tf(Image.new("RGB", (128, 192), (255, 255, 255)))
    black = tf(Image.new("RGB", (128, 192), (0, 0, 0)))
    assert white.shape == (3, 224, 224) and white.dtype == torch.float32
    assert torch.allclose(white, torch.ones_like(white))
    assert torch.allclose(black, -torch.ones_like(black))


def test_imagenet_normalisation_for_torchvision_backbones() -> None:
    cfg = compose_features(["image_encoder=resnet18"]).image_encoder
    x = build_transform(cfg, train=False)(Image.new("RGB", (50, 40), (124, 116, 104)))
    # (124/255 - 0.485) / 0.229 ~ 0.0034 : ImageNet mean colour maps to ~0
    assert x.abs().max() < 0.02


@pytest.mark.parametrize(("w", "h"), [(128, 192), (300, 200), (97, 131), (256, 256)])
def test_single_resample_matches_resize_then_center_crop(w: int, h: int) -> None:
    img = _photo(w, h)
    ours = np.asarray(ResizeCenterCrop(256, 224, Image.Resampling.BICUBIC)(img), dtype=int)
    ref = v2.Compose(
        [v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC), v2.CenterCrop(224)]
    )(img)
    assert ours.shape == (224, 224, 3)
    assert np.abs(ours - np.asarray(ref, dtype=int)).max() <= 1


def _smooth_photo(w: int, h: int) -> Image.Image:
    """A photo-like image (smooth gradients and a disc), where resamplers should agree."""
    y, x = np.mgrid[0:h, 0:w]
    disc = ((x - w / 2) ** 2 + (y - h / 3) ** 2 < (min(w, h) / 4) ** 2) * 90
    rgb = np.stack([x * 200 / w, y * 200 / h, 60 + disc], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


@pytest.mark.parametrize(("w", "h"), [(128, 192), (300, 200), (97, 131), (1000, 700)])
def test_opencv_resample_agrees_with_pil(w: int, h: int) -> None:
    """Enlarging (128x192) and shrinking (1000x700, INTER_AREA) both land on PIL's pixels."""
    img = _smooth_photo(w, h)
    ours = CvResizeCenterCrop(256, 224, cv2.INTER_CUBIC)(img).astype(int)
    ref = np.asarray(ResizeCenterCrop(256, 224, Image.Resampling.BICUBIC)(img), dtype=int)
    assert ours.shape == (224, 224, 3)
    assert np.abs(ours - ref).mean() < 2.0


def test_opencv_resample_of_a_one_pixel_image() -> None:
    out = CvResizeCenterCrop(256, 224, cv2.INTER_LINEAR)(Image.new("RGB", (1, 3), (9, 8, 7)))
    assert out.shape == (224, 224, 3) and (out == (9, 8, 7)).all()


def test_resize_backend_is_configurable() -> None:
    img = _photo(128, 192)
    pil = build_transform(compose_features(["image_encoder.resize_backend=pil"]).image_encoder,
                          train=False).pixels(img)
    ref = np.asarray(ResizeCenterCrop(256, 224, Image.Resampling.BICUBIC)(img))
    assert torch.equal(pil, torch.from_numpy(ref.copy()))
    fast = build_transform(compose_features([]).image_encoder, train=False).pixels(img)
    assert fast.shape == pil.shape and not torch.equal(fast, pil)


def test_train_transform_is_random_and_sized() -> None:
    cfg = compose_features(["image_encoder.image_size=32"]).image_encoder
    tf = build_transform(cfg, train=True)
    img = _photo(60, 90, seed=3)
    torch.manual_seed(0)
    a, b = tf(img), tf(img)
    assert a.shape == b.shape == (3, 32, 32)
    assert not torch.equal(a, b)


def test_batches_normalise_to_channels_last() -> None:
    cfg = compose_features([]).image_encoder
    tf = build_transform(cfg, train=False)
    pixels = torch.stack([tf.pixels(_photo(40, 60, s)) for s in range(3)])
    x = tf.normalize(pixels)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 224, 224, 3)
    assert x.shape == (3, 3, 224, 224) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x[1], tf(_photo(40, 60, 1)))


@pytest.mark.parametrize(
    ("override", "column"),
    [
        ("image_encoder.resize_size=100", "resize_size"),
        ("image_encoder.interpolation=lanczos9", "interpolation"),
        ("image_encoder.std=[0.5,0.0,0.5]", "std"),
        ("image_encoder.resize_backend=skimage", "resize_backend"),
    ],
)
def test_bad_transform_config_is_a_config_error(override: str, column: str) -> None:
    cfg = compose_features([override]).image_encoder
    with pytest.raises(ConfigError) as err:
        build_transform(cfg, train=False)
    assert err.value.column == column


def test_preprocess_id_tracks_pixel_settings() -> None:
    base = as_dict(compose_features([]).image_encoder)
    same = preprocess_id(dict(base, hflip=0.0), {})
    assert preprocess_id(base, {}) == same
    assert preprocess_id(dict(base, mean=[0.4, 0.5, 0.5]), {}) != same
    assert preprocess_id(base, {"loading": {"max_pixels": 1}}) != same
    assert preprocess_id(dict(base, resize_backend="pil"), {}) != same


def test_normalizer_scales_per_channel_and_leaves_its_input_untouched() -> None:
    normalize = build_transform({"image_size": 4, "interpolation": "bilinear",
                                 "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0]},
                                train=False).normalize
    for dtype in (torch.uint8, torch.float32):  # a float input must not be normalised in place
        pixels = torch.full((2, 4, 4, 3), 255, dtype=dtype)
        out = normalize(pixels)
        assert out.dtype == torch.float32 and out.shape == (2, 3, 4, 4)
        assert out.is_contiguous(memory_format=torch.channels_last)
        expected = torch.tensor([1.0, 3.0, 1.0]).view(1, 3, 1, 1).expand_as(out)
        assert torch.allclose(out, expected, atol=1e-6)
        assert bool((pixels == 255).all())
