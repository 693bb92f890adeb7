"""Checkpoint compatibility: a checkpoint is used only with the model config, feature layout
and dataset it was trained with; anything else is refused with the differing keys named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from recsys.errors import ModelError

SIGNATURE_KEY = "signature"


def make_signature(schema: dict[str, Any], net_config: dict[str, Any],
                   data_fingerprint: str | None) -> dict[str, Any]:
    """What must match for weights to be reused."""
    return {"schema": schema, "net": net_config, "data_fingerprint": data_fingerprint}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a Lightning checkpoint (tensors only, ``weights_only=True``)."""
    if not path.is_file():
        raise ModelError("checkpoint not found", file=str(path))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or corrupt files
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise ModelError(f"not a readable checkpoint ({type(err).__name__}: {first})",
                         file=str(path)) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ModelError("not a Lightning checkpoint (no state_dict)", file=str(path))
    return ckpt


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if a == b else [f"{prefix}: checkpoint {a!r} vs now {b!r}"]


def stored_signature(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    """The signature saved with a checkpoint of this package's training."""
    hparams = ckpt.get("hyper_parameters") or {}
    signature = hparams.get(SIGNATURE_KEY) if isinstance(hparams, dict) else None
    if not isinstance(signature, dict):
        raise ModelError("checkpoint was not written by recsys-train (no model signature)",
                         file=str(path))
    return signature


def check_compatible(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Refuse a checkpoint of another model, config or dataset; return it when compatible."""
    ckpt = read_checkpoint(path)
    differences = _diff(stored_signature(ckpt, path), expected)
    if differences:
        shown = "; ".join(differences[:5]) + (" ..." if len(differences) > 5 else "")
        raise ModelError(f"checkpoint belongs to another model, config or dataset: {shown}",
                         file=str(path))
    return ckpt
