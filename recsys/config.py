"""Config helpers shared by every stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from recsys.errors import ConfigError


def as_dict(
    cfg: DictConfig | ListConfig | Mapping[str, Any], where: str = "config"
) -> dict[str, Any]:
    """A resolved plain-dict copy of a config node or mapping, with string keys at the top level.

    OmegaConf containers are resolved (interpolations included), nested ones too, and nested
    mappings, lists and tuples become new dicts and lists, so the result shares no container with
    ``cfg``. Anything that is not a mapping raises :class:`ConfigError` naming ``where``.
    """
    out = _plain(cfg)
    if not isinstance(out, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(out).__name__}")
    return {str(k): v for k, v in out.items()}


def _plain(value: Any) -> Any:
    """OmegaConf containers, mappings, lists and tuples become plain (new) dicts and lists."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
