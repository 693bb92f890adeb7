"""build_encoder: every configured backbone, trainable modes, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from imagefixtures import compose_features
from omegaconf import OmegaConf
from torch import nn

from recsys.errors import ConfigError, ModelError
from recsys.images.encoders import ImageEncoder, build_encoder


def _cfg(name: str, *overrides: str) -> dict[str, object]:
    cfg = compose_features([f"image_encoder={name}", *overrides]).image_encoder
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


@pytest.mark.parametrize(
    ("name", "dim"),
    [
        ("resnet18", 512),
        ("resnet50", 2048),
        ("mobilenet_v3_small", 576),
        ("mobilenet_v3_large", 960),
        ("timm_generic", 512),
    ],
)
def test_configured_backbones_give_pooled_features(name: str, dim: int) -> None:
    encoder = build_encoder(_cfg(name))
    assert encoder.out_dim == dim
    out = encoder(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, dim) and torch.isfinite(out).all()
    assert encoder.classify(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
    assert encoder.encoder_id.startswith(str(_cfg(name)["name"]))


def test_timm_generic_takes_any_architecture() -> None:
    encoder = build_encoder(_cfg("timm_generic", "image_encoder.arch=mobilenetv3_small_050"))
    assert encoder.name == "timm_mobilenetv3_small_050"
    assert encoder(torch.rand(1, 3, 64, 64)).shape == (1, encoder.out_dim)
    with pytest.raises(ConfigError, match="no_such_net"):
        build_encoder(_cfg("timm_generic", "image_encoder.arch=no_such_net"))


def test_random_init_is_seeded() -> None:
    a = build_encoder(_cfg("mobilenet_v3_small"))
    b = build_encoder(_cfg("mobilenet_v3_small"))
    c = build_encoder(_cfg("mobilenet_v3_small", "image_encoder.seed=1"))
    assert a.encoder_id == b.encoder_id != c.encoder_id
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(a(x), b(x))


def _trainable(encoder: ImageEncoder) -> set[str]:
    return {n for n, p in encoder.named_parameters() if p.requires_grad}


def _unit_params(encoder: ImageEncoder, units: list[list[nn.Module]]) -> set[str]:
    ids = {id(p) for unit in units for m in unit for p in m.parameters()}
    return {n for n, p in encoder.named_parameters() if id(p) in ids}


def test_trainable_modes_set_requires_grad() -> None:
    encoder = build_encoder(_cfg("resnet18"))
    units = encoder.units()
    assert len(units) == 9  # stem (conv1 + bn1) and 8 residual blocks
    head = {f"head.{n}" for n, _ in encoder.head.named_parameters()}
    assert _trainable(encoder) == set()  # built frozen
    encoder.set_trainable("full")
    assert _trainable(encoder) == {n for n, _ in encoder.named_parameters()} - head
    encoder.set_trainable("last_n", last_n=2)
    assert _trainable(encoder) == _unit_params(encoder, units[-2:])
    assert "model.layer4.1.conv2.weight" in _trainable(encoder)
    assert "model.layer3.1.conv2.weight" not in _trainable(encoder)
    encoder.set_trainable("frozen")
    assert _trainable(encoder) == set()


def test_frozen_blocks_keep_batchnorm_statistics_while_training() -> None:
    encoder = build_encoder(_cfg("mobilenet_v3_small"))
    encoder.set_trainable("last_n", last_n=1)
    encoder.train()
    first_bn = next(m for m in encoder.units()[0][0].modules() if isinstance(m, nn.BatchNorm2d))
    last_bn = next(m for m in encoder.units()[-1][0].modules() if isinstance(m, nn.BatchNorm2d))
    assert not first_bn.training and last_bn.training
    assert first_bn.running_mean is not None and last_bn.running_mean is not None
    before_first = first_bn.running_mean.clone()
    before_last = last_bn.running_mean.clone()
    loss = encoder(torch.rand(4, 3, 64, 64)).sum()
    loss.backward()
    assert torch.equal(first_bn.running_mean, before_first)
    assert not torch.equal(last_bn.running_mean, before_last)
    grads = {n for n, p in encoder.named_parameters() if p.grad is not None}
    assert grads and grads <= _trainable(encoder)


@pytest.mark.parametrize(("mode", "last_n"), [("sideways", 0), ("last_n", 0), ("last_n", 99)])
def test_bad_trainable_settings_are_config_errors(mode: str, last_n: int) -> None:
    encoder = build_encoder(_cfg("mobilenet_v3_small"))
    with pytest.raises(ConfigError):
        encoder.set_trainable(mode, last_n=last_n)


def test_weights_file_is_loaded(tmp_path: Path) -> None:
    torch.manual_seed(7)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    encoder = build_encoder(
        _cfg("resnet18", "image_encoder.weights=file", f"image_encoder.weights_path={path}")
    )
    conv1 = encoder.model.get_submodule("conv1")
    assert isinstance(conv1, nn.Conv2d) and torch.equal(conv1.weight, reference.conv1.weight)
    assert encoder.encoder_id != build_encoder(_cfg("resnet18")).encoder_id


def test_bad_weights_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.pth"
    with pytest.raises(ConfigError, match=r"none\.pth"):
        build_encoder(
            _cfg("resnet18", "image_encoder.weights=file", f"image_encoder.weights_path={missing}")
        )
    partial = tmp_path / "partial.pth"
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, partial)
    with pytest.raises(ModelError, match=r"partial\.pth.*layer4"):
        build_encoder(
            _cfg("resnet18", "image_encoder.weights=file", f"image_encoder.weights_path={partial}")
        )
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"garbage\.pth"):
        build_encoder(
            _cfg("resnet18", "image_encoder.weights=file", f"image_encoder.weights_path={garbage}")
        )


def test_packaged_weights_only_for_lite0() -> None:
    with pytest.raises(ConfigError, match="packaged"):
        build_encoder(_cfg("resnet18", "image_encoder.weights=packaged"))
