"""Which images a world has (item shots, users' social posts) and writing them, in parallel when many."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import USER_DIR, WorldConfig
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.render import ItemImage, SceneImage, render, save_png
from recsys.data.synthetic.sessions import DAY_S

_BATCH = 64  # images per task sent to a worker process
_ITEM_STREAM, _USER_STREAM = 1, 2  # seed streams: image seeds never collide with the world's


def item_images(w: WorldConfig, cat: Catalogue) -> list[ItemImage]:
    """One product shot per item (empty when images are disabled)."""
    if not w.images:
        return []
    it = w.items
    shapes = [c.shape for c in it.categories.values()]
    patterns = list(it.styles.values())
    palette = w.colour_rgb
    paths = cat.table["image_path"].tolist()
    return [
        ItemImage(
            path=str(paths[i]),
            size=w.image_size,
            seed=(w.seed, _ITEM_STREAM, i),
            shape=shapes[cat.category[i]],
            rgb=palette[cat.colour[i]],
            pattern=patterns[cat.style[i]],
            brand=int(cat.brand[i]),
        )
        for i in range(w.n_items)
    ]


def user_images(
    w: WorldConfig, rng: np.random.Generator, pop: Population, start: np.datetime64
) -> tuple[pd.DataFrame, list[SceneImage]]:
    """The user_images table and its scenes: 1..max_images posts for the users who post."""
    n_posts = pop.n_images if (w.images and w.social_images) else np.zeros(w.n_users, np.int64)
    user = np.repeat(np.arange(w.n_users), n_posts)
    k = np.arange(len(user)) - np.repeat(np.cumsum(n_posts) - n_posts, n_posts)
    posted_s = rng.integers(0, w.n_days * DAY_S, len(user))
    ids = pop.table["user_id"].to_numpy(dtype=object)
    paths = [f"{USER_DIR}/{ids[u]}_{j}.png" for u, j in zip(user, k, strict=True)]
    table = pd.DataFrame(
        {
            "user_id": pd.Series(ids[user], dtype=str),
            "image_path": pd.Series(paths, dtype=str),
            "posted_at": (
                start.astype("datetime64[ns]") + posted_s.astype("timedelta64[s]")
            ).astype("datetime64[ns]"),
        }
    )
    colour_p = _sharpen(pop.colour_taste, w.users.scene_sharpness)
    style_p = _sharpen(pop.style_taste, w.users.scene_sharpness)
    palette = tuple(w.colour_rgb)
    patterns = tuple(w.items.styles.values())
    shapes = tuple(dict.fromkeys(c.shape for c in w.items.categories.values()))
    scenes = [
        SceneImage(
            path=p,
            size=w.image_size,
            seed=(w.seed, _USER_STREAM, int(u), int(j)),
            colour_p=tuple(colour_p[u].tolist()),
            style_p=tuple(style_p[u].tolist()),
            palette=palette,
            patterns=patterns,
            shapes=shapes,
        )
        for p, u, j in zip(paths, user, k, strict=True)
    ]
    return table, scenes


def _sharpen(taste: np.ndarray, power: float) -> np.ndarray:
    p = taste**power
    return p / p.sum(axis=1, keepdims=True)


def write_images(
    specs: Sequence[ItemImage | SceneImage], root: Path, workers: int, parallel_min: int
) -> None:
    """Render every spec to ``root / spec.path``; a process pool renders large sets."""
    for sub in {str(Path(s.path).parent) for s in specs}:
        (root / sub).mkdir(parents=True, exist_ok=True)
    batches = [(str(root), list(specs[i:i + _BATCH])) for i in range(0, len(specs), _BATCH)]
    n_proc = min(workers, os.cpu_count() or 1, len(batches))
    if n_proc > 1 and len(specs) >= parallel_min:
        # fork where available: workers need no re-import of the caller's main module. A worker
        # that dies raises BrokenProcessPool instead of hanging.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(n_proc, mp_context=mp.get_context(method)) as pool:
            for _ in pool.map(_render_batch, batches):
                pass
    else:
        for batch in batches:
            _render_batch(batch)


def _render_batch(batch: tuple[str, list[ItemImage | SceneImage]]) -> int:
    root, specs = batch
    for spec in specs:
        save_png(render(spec), os.path.join(root, spec.path))
    return len(specs)
