"""Config helpers shared by every stage."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from recsys.errors import ConfigError


def as_dict(cfg: DictConfig | dict[str, Any], where: str = "config") -> dict[str, Any]:
    """A resolved plain-dict copy of a config node (a ConfigError if it is not a mapping)."""
    if isinstance(cfg, dict):
        return cfg
    out = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(out, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(out).__name__}")
    return {str(k): v for k, v in out.items()}
