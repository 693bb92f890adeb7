"""TorchScript save / load of the user tower (torch marks ``torch.jit`` deprecated; the
warnings are silenced here, the one place that uses it)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from recsys.errors import ModelError


def script(module: nn.Module) -> torch.jit.ScriptModule:
    """``module`` compiled to TorchScript on CPU in eval mode; a ModelError if it cannot be."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(
                module.cpu().eval())
            torch.jit.save(scripted, io.BytesIO())
        except Exception as err:  # TorchScript raises many types
            raise ModelError(f"user tower cannot be exported to TorchScript: {err}") from None
    return scripted


def save(module: torch.jit.ScriptModule, path: Path) -> None:
    """Write a scripted module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(module, str(path))


def load(path: Path) -> torch.jit.ScriptModule:
    """Read a scripted module onto the CPU in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()
