"""Shared plumbing of the Hydra apps: user errors print one line and exit with code 2.

Each app is ``run_app("<config>", task)``: the overrides are composed once up front so that an
unknown group, option or key is reported as a :class:`ConfigError` (exit 2, no traceback), then
Hydra's own ``@hydra.main`` runs ``task`` (so ``--multirun``, ``--cfg`` and sweeps keep working).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from recsys.errors import ConfigError, RecsysError
from recsys.runtime import apply_runtime

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")
log = logging.getLogger("recsys")


def _precheck(config_name: str, overrides: list[str]) -> None:
    """Compose the config with ``overrides``; raise ConfigError on any composition problem."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
            OmegaConf.resolve(cfg) if _resolvable(cfg) else None
    except (HydraException, OmegaConfBaseException) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"{config_name}.yaml with overrides {overrides}: {message}") from None
    finally:
        GlobalHydra.instance().clear()


def _resolvable(cfg: DictConfig) -> bool:
    """Interpolations of ``hydra:`` and ``now:`` only resolve inside a Hydra run."""
    return "${hydra:" not in OmegaConf.to_yaml(cfg) and "${now:" not in OmegaConf.to_yaml(cfg)


def run_app(config_name: str, task: Callable[[DictConfig], Any]) -> None:
    """Run ``task`` as a Hydra app over ``conf/<config_name>.yaml``, mapping user errors to exit 2."""
    args = sys.argv[1:]
    try:
        if not any(a.startswith("-") for a in args):
            _precheck(config_name, args)

        @hydra.main(config_path=CONFIG_DIR, config_name=config_name, version_base="1.3")
        def _main(cfg: DictConfig) -> Any:
            try:
                apply_runtime(cfg.get("runtime"))
                return task(cfg)
            except OmegaConfBaseException as err:
                _exit(ConfigError(str(err)))
            except RecsysError as err:
                _exit(err)

        _main()
    except RecsysError as err:
        _exit(err)


def _exit(err: RecsysError) -> None:
    """Print a user error on one line and leave with its exit code (Hydra lets SystemExit pass)."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
