"""Product-image pixels for fine-tuning the CNN (read in loader workers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from recsys.images.loading import BadImageError, LoadSettings, load_image

log = logging.getLogger(__name__)


class PixelReader:
    """Loads and transforms the images of a batch of items; an item without a usable image gets
    zeros and ``mask`` False (the tower then uses its learned "no image" vector)."""

    def __init__(
        self,
        root: Path,
        paths: Sequence[str | None],
        transform: Callable[[Image.Image], Tensor],
        settings: LoadSettings,
        image_size: int,
    ) -> None:
        self.root, self.paths, self.transform = root, list(paths), transform
        self.settings, self.image_size = settings, image_size
        self._warned = False

    def __call__(self, items: np.ndarray) -> tuple[Tensor, Tensor]:
        size = self.image_size
        pixels = torch.zeros((len(items), 3, size, size), dtype=torch.float32)
        mask = torch.zeros(len(items), dtype=torch.bool)
        for row, item in enumerate(items.tolist()):
            rel = self.paths[item]
            if not rel:
                continue
            try:
                pixels[row] = self.transform(load_image(self.root, rel, self.settings))
                mask[row] = True
            except BadImageError as err:
                if not self._warned:
                    log.warning("treating unusable product images as missing, first: %s", err)
                    self._warned = True
        return pixels, mask


def image_paths(items_table_paths: Sequence[object]) -> list[str | None]:
    """Normalise an ``image_path`` column (None / NaN / "" mean no image)."""
    return [p if isinstance(p, str) and p else None for p in items_table_paths]


@torch.no_grad()
def encode_item_images(encoder: torch.nn.Module, loader: Iterable[dict[str, Tensor]],
                       item_image: Tensor, item_image_mask: Tensor) -> None:
    """Fill ``item_image`` / ``item_image_mask`` (store buffers) with the CNN's features of every
    catalogue batch of ``loader`` (``items``, ``pixels``, ``pixel_mask``)."""
    device = item_image.device
    for batch in loader:
        items = batch["items"].to(device)
        feats = encoder(batch["pixels"].to(device))
        item_image[items] = feats.to(item_image.dtype)
        item_image_mask[items] = batch["pixel_mask"].to(device)
