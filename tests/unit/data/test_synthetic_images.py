"""Procedural images follow the attributes: colour dominates, styles differ in texture, scenes
follow the user's taste, and every image is a different draw."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synthfixtures import tiny_config

from recsys.data.synthetic import generate


def small_config(**overrides: Any) -> dict[str, Any]:
    return tiny_config(**{"n_users": 150, "n_items": 120, **overrides})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = generate(small_config(), tmp_path_factory.mktemp("synthetic_images") / "world")
    meta = json.loads((root / "world.json").read_text())
    colours = meta["config"]["items"]["colours"]
    palette = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in colours.values()])
    return {
        "root": root,
        "meta": meta,
        "names": list(colours),
        "palette": palette.astype(np.float64),
        "items": pd.read_parquet(root / "items.parquet"),
        "user_images": pd.read_parquet(root / "user_images.parquet"),
    }


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        return np.asarray(im, dtype=np.float64)


def _palette_counts(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(-1, 3)
    nearest = ((flat[:, None, :] - palette[None]) ** 2).sum(-1).argmin(axis=1)
    return np.bincount(nearest, minlength=len(palette))


def test_item_images_have_the_item_colour_as_dominant_foreground(world: dict[str, Any]) -> None:
    hits = 0
    for path, colour in zip(world["items"]["image_path"], world["items"]["colour"], strict=True):
        px = _pixels(world["root"] / path)
        assert px.shape == (32, 32, 3)
        border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
        fg = px.reshape(-1, 3)
        fg = fg[np.linalg.norm(fg - np.median(border, axis=0), axis=1) > 40]
        counts = _palette_counts(fg, world["palette"])
        hits += world["names"][int(counts.argmax())] == colour
    assert hits / len(world["items"]) > 0.95


def test_patterned_styles_have_more_edges_than_plain(world: dict[str, Any]) -> None:
    items = world["items"]
    patterns = world["meta"]["config"]["items"]["styles"]

    def edge_energy(path: str) -> float:
        grey = _pixels(world["root"] / path).mean(axis=2)
        return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())

    energy = items["image_path"].map(edge_energy)
    pattern = items["style"].map(patterns)
    plain = energy[pattern == "plain"]
    textured = energy[pattern != "plain"]
    assert len(plain) >= 3 and len(textured) >= 10
    assert textured.median() > 1.5 * plain.median()


def test_same_attributes_still_give_different_images(world: dict[str, Any]) -> None:
    items = world["items"]
    groups = items.groupby(["category", "colour", "style"])["image_path"].apply(list)
    pairs = [g[:2] for g in groups if len(g) >= 2]
    assert pairs
    for a, b in pairs:
        assert not np.array_equal(_pixels(world["root"] / a), _pixels(world["root"] / b))


def test_social_images_are_dominated_by_the_favourite_colour(world: dict[str, Any]) -> None:
    truth = pd.DataFrame(world["meta"]["truth"]["users"]).set_index("user_id")
    top1 = []
    for user, paths in world["user_images"].groupby("user_id")["image_path"]:
        counts = sum(_palette_counts(_pixels(world["root"] / p), world["palette"]) for p in paths)
        top1.append(world["names"][int(np.argmax(counts))] == truth.loc[user, "favourite_colour"])
    assert len(top1) > 60
    chance = 1 / len(world["names"])
    assert np.mean(top1) > max(0.5, 4 * chance)
