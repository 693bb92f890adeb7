"""Build a synthetic marketing world and publish it as raw tables, images and ``world.json``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.atomic import write_json_atomic
from recsys.data.synthetic.catalogue import Catalogue, brand_names, make_catalogue
from recsys.data.synthetic.complements import complement_items, complement_purchases
from recsys.data.synthetic.config import GENERATOR_VERSION, WorldConfig
from recsys.data.synthetic.imaging import item_images, user_images, write_images
from recsys.data.synthetic.interactions import simulate
from recsys.data.synthetic.parse import config_dict, config_hash, parse_config
from recsys.data.synthetic.population import Population, make_population
from recsys.data.synthetic.render import ItemImage, SceneImage
from recsys.data.synthetic.writer import WORLD_FILE, is_cached, staging, write_table

log = logging.getLogger("recsys")
# Independent random streams: switching images off or resizing them leaves the tables unchanged.
_ITEMS, _USERS, _EVENTS, _POSTS, _PAIRS = range(5)


@dataclass(frozen=True)
class World:
    """Everything a generated world holds before it is written."""

    config: WorldConfig
    tables: dict[str, pd.DataFrame]
    images: list[ItemImage | SceneImage]
    periods: dict[str, str]
    truth: dict[str, Any]


def generate(cfg: Mapping[str, Any], root: Path) -> Path:
    """Write the world described by ``cfg`` (the ``generator:`` block) into ``root``.

    Cached: when ``root/world.json`` carries the same config hash nothing is rebuilt. The world is
    built in a temporary directory beside ``root`` and renamed into place.
    """
    w = parse_config(cfg)
    root = Path(root)
    digest = config_hash(w)
    if is_cached(root, digest):
        log.info("synthetic world %s is up to date (config %s)", root, digest)
        return root
    t0 = time.perf_counter()
    world = build_world(w)
    with staging(root) as tmp:
        write_images(world.images, tmp, w.image_workers, w.parallel_min_images)
        for name, table in world.tables.items():
            write_table(table, tmp / f"{name}.parquet")
        meta = {
            "generator": "recsys.data.synthetic",
            "generator_version": GENERATOR_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": config_dict(w),
            "config_hash": digest,
            "row_counts": {name: len(t) for name, t in world.tables.items()},
            "n_images": len(world.images),
            "periods": world.periods,
            "truth": world.truth,
        }
        write_json_atomic(tmp / WORLD_FILE, meta)  # last: its presence marks a complete world
    counts = meta["row_counts"]
    log.info("synthetic world %s: %s, %d images in %.1fs", root, counts, len(world.images),
             time.perf_counter() - t0)
    return root


def build_world(w: WorldConfig) -> World:
    """Sample users, items, interactions and image specs (no I/O)."""
    start, cat, pop = latent_world(w)
    pairs = _rng(w, _PAIRS)
    partner = complement_items(w, pairs, cat)
    events = simulate(w, _rng(w, _EVENTS), pop, cat, start,
                      extra=lambda log: complement_purchases(w, pairs, pop, cat, partner, log))
    posts, scenes = user_images(w, _rng(w, _POSTS), pop, start)
    final_start = start + np.timedelta64(w.n_days - w.final_days, "D")
    periods = {
        "start": str(start),
        "end": w.end_date,
        "final_start": str(final_start),
    }
    return World(
        config=w,
        tables={
            "interactions": events,
            "users": pop.table,
            "items": cat.table,
            "user_images": posts,
        },
        images=[*item_images(w, cat), *scenes],
        periods=periods,
        truth=_truth(w, pop, cat, partner),
    )


def latent_world(w: WorldConfig) -> tuple[np.datetime64, Catalogue, Population]:
    """The window's first day, the catalogue and the population with their latent variables
    (what a response simulator needs; no events are drawn)."""
    start = np.datetime64(w.end_date, "D") - np.timedelta64(w.n_days - 1, "D")
    cat = make_catalogue(w, _rng(w, _ITEMS), start)
    return start, cat, make_population(w, _rng(w, _USERS), cat.brand_weights)


def _rng(w: WorldConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng([w.seed, stream])


def _truth(w: WorldConfig, pop: Population, cat: Catalogue, partner: np.ndarray) -> dict[str, Any]:
    """Latent ground truth for checks: favourites per user, popularity and complement per item."""
    it = w.items

    def names(options: dict[str, Any], taste: np.ndarray) -> list[str]:
        return np.asarray(list(options), dtype=object)[taste.argmax(axis=1)].tolist()

    brands = brand_names(it.n_brands)
    return {
        "users": {
            "user_id": pop.table["user_id"].tolist(),
            "favourite_colour": names(it.colours, pop.colour_taste),
            "favourite_style": names(it.styles, pop.style_taste),
            "favourite_category": names(it.categories, pop.category_taste),
            "favourite_brand": [brands[b] for b in pop.favourite_brand],
            "price_sensitivity": np.round(pop.price_sensitivity, 4).tolist(),
            "loyalty": np.round(pop.loyalty, 4).tolist(),
        },
        "items": {
            "item_id": cat.table["item_id"].tolist(),
            "popularity": np.round(cat.popularity, 4).tolist(),
            "complement": cat.table["item_id"].to_numpy()[partner].tolist(),
        },
        "colour_base_rate": dict(
            zip(it.colours, (np.bincount(cat.colour, minlength=len(it.colours)) / w.n_items)
                .round(4).tolist(), strict=True)
        ),
    }
