"""Torch device names from configuration (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""

from __future__ import annotations

import re

from recsys.errors import ConfigError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; refuse ``cuda`` without a GPU.

    torch is imported here, on call, so that importing this module stays cheap."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}",
                          column="device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device=cuda but CUDA is not available", column="device")
    return device
