"""The packaged EfficientNet-Lite0 weights: key mapping and real ImageNet predictions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import timm
import torch
from imagefixtures import compose_features
from PIL import Image
from skimage import data

from recsys.errors import ModelError
from recsys.images.encoders import ImageEncoder, build_encoder
from recsys.images.transforms import Preprocess, build_transform
from recsys.images.weights import (
    LITE0_ARCH,
    lite0_weights_path,
    load_lite0_state_dict,
    map_lite0_key,
)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("_conv_stem.weight", "conv_stem.weight"),
        ("_bn0.running_var", "bn1.running_var"),
        ("_blocks.0._project_conv.weight", "blocks.0.0.conv_pw.weight"),
        ("_blocks.0._bn2.bias", "blocks.0.0.bn2.bias"),
        ("_blocks.4._expand_conv.weight", "blocks.2.1.conv_pw.weight"),
        ("_blocks.4._bn1.weight", "blocks.2.1.bn2.weight"),
        ("_blocks.15._project_conv.weight", "blocks.6.0.conv_pwl.weight"),
        ("_blocks.15._bn2.num_batches_tracked", "blocks.6.0.bn3.num_batches_tracked"),
        ("_conv_head.weight", "conv_head.weight"),
        ("_bn1.weight", "bn2.weight"),
        ("_fc.bias", "classifier.bias"),
    ],
)
def test_key_mapping_examples(source: str, target: str) -> None:
    assert map_lite0_key(source) == target


def test_packaged_weights_load_with_no_missing_or_unexpected_keys() -> None:
    assert lite0_weights_path().is_file()
    model = timm.create_model(LITE0_ARCH, pretrained=False)
    state = load_lite0_state_dict()
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert len(state) == len(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_unknown_key_is_a_model_error() -> None:
    from recsys.images.weights import map_lite0_state_dict

    with pytest.raises(ModelError, match=r"_blocks\.16"):
        map_lite0_state_dict({"_blocks.16._bn0.weight": torch.zeros(1)})


@pytest.fixture(scope="module")
def lite0() -> tuple[ImageEncoder, Preprocess]:
    cfg = compose_features([]).image_encoder
    return build_encoder(cfg), build_transform(cfg, train=False)


@pytest.mark.parametrize(
    ("image", "classes"),
    [
        (data.chelsea, {281, 282, 283, 284, 285}),  # tabby, tiger cat, Persian, Siamese, Egyptian
        (data.coffee, {967, 968}),  # espresso, cup
    ],
)
def test_lite0_classifies_real_photos_top5(
    lite0: tuple[ImageEncoder, Preprocess], image: Callable[[], np.ndarray], classes: set[int]
) -> None:
    encoder, preprocess = lite0
    x = preprocess(Image.fromarray(image())).unsqueeze(0)
    logits = encoder.classify(x)
    top5 = set(logits.topk(5).indices[0].tolist())
    assert top5 & classes, f"top-5 {sorted(top5)} misses {sorted(classes)}"
    assert int(logits.argmax()) in classes
    assert encoder(x).shape == (1, 1280)
