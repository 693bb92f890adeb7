"""Generator config: the YAML parses; bad keys and values raise ConfigError naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from recsys.data.synthetic import config_hash, parse_config
from recsys.errors import ConfigError

YAML = Path(__file__).resolve().parents[3] / "recsys" / "conf" / "data" / "synthetic.yaml"


def _raw() -> dict[str, Any]:
    data = OmegaConf.to_container(OmegaConf.load(YAML).generator)
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def test_yaml_parses_with_default_scale() -> None:
    w = parse_config(_raw())
    assert (w.n_users, w.n_items, w.image_size) == (2000, 1000, 96)
    assert w.images and w.social_images
    assert set(w.users.channels) == {"app", "web", "store"}
    rgb = dict(zip(w.items.colours, w.colour_rgb, strict=True))
    assert rgb["red"] == (0xD6, 0x28, 0x28) and rgb["black"] == (0x20, 0x20, 0x20)  # "#d62828", "#202020"


def test_accepts_omegaconf_and_the_whole_data_group() -> None:
    whole = OmegaConf.load(YAML)
    assert isinstance(whole, DictConfig)
    assert parse_config(whole) == parse_config(whole.generator) == parse_config(_raw())


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("n_users",), 0, "generator.n_users"),
        (("n_users",), "many", "generator.n_users"),
        (("images",), "yes", "generator.images"),
        (("funnel", "click"), 1.5, "generator.funnel.click"),
        (("final_days",), 500, "generator.final_days"),
        (("end_date",), "30/06/2024", "generator.end_date"),
        (("items", "categories", "tshirt", "shape"), "cape", "generator.items.categories.tshirt.shape"),
        (("items", "styles", "sporty"), "tartan", "generator.items.styles.sporty"),
        (("items", "colours", "red"), "red", "generator.items.colours.red"),
        (("users", "channels"), {"app": 1.0, "web": 0.0}, "generator.users.channels"),
        (("users", "income_price_sensitivity"), [1.0], "generator.users.income_price_sensitivity"),
    ],
)
def test_bad_values_name_the_key(path: tuple[str, ...], value: Any, needle: str) -> None:
    raw = _raw()
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        parse_config(raw)


def test_unknown_and_missing_keys() -> None:
    raw = _raw()
    raw["funnel"]["clik"] = 0.3
    with pytest.raises(ConfigError, match=r"generator\.funnel: unknown key\(s\) \['clik'\]"):
        parse_config(raw)
    raw = _raw()
    del raw["sessions"]["candidates"]
    with pytest.raises(ConfigError, match=r"generator\.sessions: missing key\(s\) \['candidates'\]"):
        parse_config(raw)


def test_hash_ignores_runtime_keys_only() -> None:
    base = config_hash(parse_config(_raw()))
    raw = _raw()
    raw["image_workers"] = 7
    raw["parallel_min_images"] = 1
    assert config_hash(parse_config(raw)) == base
    raw["seed"] = 43
    assert config_hash(parse_config(raw)) != base
    raw = _raw()
    raw["utility"]["colour"] = 2.0
    assert config_hash(parse_config(raw)) != base
