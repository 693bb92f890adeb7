"""``ImageEncoder``: a CNN that maps images to pooled features, trainable in three modes.

``build_encoder(encoder_cfg)`` returns an ``nn.Module`` with ``out_dim`` and
``forward(images[B,3,H,W]) -> [B, out_dim]`` (pooled, pre-logits features). The ImageNet
classifier head is kept (``classify``) but never used by ``forward`` and never trained.
``set_trainable`` freezes the whole backbone, leaves the last N blocks trainable, or trains it
fully; frozen blocks stay in eval mode (BatchNorm statistics untouched) when ``train()`` is called.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.images.backbones import create_model

TRAINABLE_MODES: tuple[str, ...] = ("frozen", "last_n", "full")


class ImageEncoder(nn.Module):
    """Pooled CNN features; subclasses say how to pool and where the classifier head is."""

    def __init__(self, model: nn.Module, head: nn.Module, out_dim: int, name: str) -> None:
        super().__init__()
        self.model = model
        self.head = head
        self.out_dim = out_dim
        self.name = name
        self.encoder_id = f"{name}-{state_digest(self)[:12]}"
        self.set_trainable("frozen")

    def forward(self, images: Tensor) -> Tensor:
        return self.pooled(images)

    def pooled(self, images: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.inference_mode()
    def classify(self, images: Tensor) -> Tensor:
        """ImageNet logits ``[B, num_classes]`` from the kept classifier head."""
        return self.head(self.pooled(images))

    def units(self) -> list[list[nn.Module]]:
        """Blocks from input to output: stem layers, each residual/MBConv block, head layers."""
        return _units(self.model, exclude=self.head)

    def set_trainable(self, mode: str, last_n: int = 0) -> None:
        """``frozen``: nothing trains; ``last_n``: the last ``last_n`` blocks; ``full``: all."""
        units = self.units()
        if mode not in TRAINABLE_MODES:
            raise ConfigError(
                f"unknown trainable mode {mode!r}; expected one of {TRAINABLE_MODES}",
                column="trainable",
            )
        if mode == "last_n" and not 1 <= last_n <= len(units):
            raise ConfigError(
                f"last_n must be in 1..{len(units)} for {self.name}, got {last_n}",
                column="last_n",
            )
        first_trainable = {"frozen": len(units), "full": 0}.get(mode, len(units) - last_n)
        for p in self.parameters():
            p.requires_grad_(False)
        for unit in units[first_trainable:]:
            for module in unit:
                for p in module.parameters():
                    p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> ImageEncoder:
        """Switch mode; blocks without trainable parameters stay in eval mode."""
        super().train(mode)
        if mode:
            for unit in self.units():
                if not any(p.requires_grad for m in unit for p in m.parameters()):
                    for m in unit:
                        m.eval()
        return self


class TimmEncoder(ImageEncoder):
    """A timm model: features are ``forward_head(..., pre_logits=True)``."""

    def __init__(self, model: nn.Module, name: str) -> None:
        timm_model: Any = model
        out_dim = int(getattr(timm_model, "head_hidden_size", None) or timm_model.num_features)
        super().__init__(model, timm_model.get_classifier(), out_dim, name)

    def pooled(self, images: Tensor) -> Tensor:
        model: Any = self.model
        return model.forward_head(model.forward_features(images), pre_logits=True)


class TorchvisionEncoder(ImageEncoder):
    """A torchvision classifier whose ``fc`` / ``classifier`` is moved out to ``head``."""

    def __init__(self, model: nn.Module, name: str) -> None:
        attr = "fc" if isinstance(getattr(model, "fc", None), nn.Module) else "classifier"
        head = getattr(model, attr)
        setattr(model, attr, nn.Identity())
        first = (
            head
            if isinstance(head, nn.Linear)
            else next(m for m in head.modules() if isinstance(m, nn.Linear))
        )
        super().__init__(model, head, int(first.in_features), name)

    def pooled(self, images: Tensor) -> Tensor:
        out: Tensor = self.model(images)
        return out


def build_encoder(encoder_cfg: DictConfig | Mapping[str, Any]) -> ImageEncoder:
    """Build the encoder described by a ``conf/image_encoder/*.yaml`` node (eval mode, frozen)."""
    cfg = as_dict(encoder_cfg, "image_encoder")
    model = create_model(cfg)
    name = str(cfg.get("name", cfg["arch"]))
    if cfg["source"] == "torchvision":
        return TorchvisionEncoder(model, name).eval()
    return TimmEncoder(model, name).eval()


def state_digest(module: nn.Module) -> str:
    """SHA-256 over parameter/buffer names and bytes: identifies the exact weights."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _units(model: nn.Module, exclude: nn.Module) -> list[list[nn.Module]]:
    """Flatten plain Sequential/ModuleList containers into blocks; consecutive other layers
    (a stem conv and its norm, a head conv and its norm) form one unit."""
    units: list[list[nn.Module]] = []
    pending: list[nn.Module] = []
    for child in model.children():
        if child is exclude or not any(True for _ in child.parameters()):
            continue
        if type(child) in (nn.Sequential, nn.ModuleList):
            if pending:
                units.append(pending)
                pending = []
            units.extend(_blocks(child))
        else:
            pending.append(child)
    if pending:
        units.append(pending)
    return units


def _blocks(container: nn.Module) -> list[list[nn.Module]]:
    out: list[list[nn.Module]] = []
    for child in container.children():
        if not any(True for _ in child.parameters()):
            continue
        if type(child) in (nn.Sequential, nn.ModuleList):
            out.extend(_blocks(child))
        else:
            out.append([child])
    return out
