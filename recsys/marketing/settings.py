"""Typed settings of the marketing apps from their composed configs."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.errors import ConfigError
from recsys.marketing.response import ResponseConfig
from recsys.marketing.simulate import SimulateConfig


def simulate_config(cfg: DictConfig | dict[str, Any]) -> SimulateConfig:
    """The ``simulate`` node as a SimulateConfig (ConfigError naming a missing or bad key)."""
    raw = as_dict(cfg, "simulate")
    try:
        r = raw["response"]
        response = ResponseConfig(
            channels=tuple(str(c) for c in r["channels"]),
            open_base=tuple(float(x) for x in r["open_base"]),
            preferred_bonus=float(r["preferred_bonus"]), hour_penalty=float(r["hour_penalty"]),
            organic_logit=float(r["organic_logit"]), contact_lift=float(r["contact_lift"]),
            service_lift=float(r["service_lift"]), points_value=float(r["points_value"]),
        )
        return SimulateConfig(response, float(raw["control_share"]), int(raw["seed"]),
                              float(raw.get("offer_holdout_share", 0.0)))
    except KeyError as err:
        raise ConfigError(f"simulate: missing key {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"simulate: bad value ({err})") from None
