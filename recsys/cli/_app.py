"""Shared plumbing of the Hydra apps: user errors print one line and exit with code 2.

Each app is ``run_app("<config>", task)``: the command line is parsed as Hydra parses it and the
config is composed once up front, over the same search path as Hydra's main (the package's
``recsys/conf``, ``--config-dir`` and ``hydra.searchpath``), so that an unknown group, option or
key or a missing config directory is reported as a :class:`ConfigError` (exit 2, no traceback).
Then Hydra's own ``@hydra.main`` runs ``task`` (so ``--multirun``, ``--cfg`` and sweeps keep
working) and ``run_app`` returns the task's value (a sweep's objective for ``recsys-train``).
"""

from __future__ import annotations

import argparse
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line as Hydra's main reads it (overrides, ``--config-dir``, ``-m``, ...)."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(argv)


def _search_path(config_dir: str | None) -> Any:
    """Hydra's search path of our apps: Hydra's own configs, the package's, ``--config-dir``."""
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery

    search_path = create_config_search_path(CONFIG_DIR)
    if config_dir is not None:
        path = Path(config_dir).absolute()
        if not path.is_dir():
            raise ConfigError(f"--config-dir {path}: no such directory")
        search_path.prepend(provider="command-line", path=f"file://{path}",
                            anchor=SearchPathQuery(provider="schema"))
    return search_path


def _precheck(config_name: str, overrides: list[str], config_dir: str | None = None,
              multirun: bool = False) -> DictConfig:
    """Compose the config with ``overrides`` as Hydra's main would and return the job's part;
    raise ConfigError on any composition problem. Sweep values (``a,b``, ``interval(...)``) are
    checked by the sweeper."""
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    search_path = _search_path(config_dir)
    GlobalHydra.instance().clear()
    try:
        app = Hydra.create_main_hydra2(task_name="recsys", config_search_path=search_path)
        cfg = app.compose_config(config_name, overrides, with_log_configuration=False,
                                 run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN)
        job = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
        OmegaConf.resolve(job) if _resolvable(job) else None
        return job
    except (HydraException, OmegaConfBaseException) as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"{config_name}.yaml with overrides {overrides}: {message}") from None
    finally:
        GlobalHydra.instance().clear()


def _resolvable(cfg: DictConfig) -> bool:
    """Interpolations of ``hydra:`` only resolve inside a Hydra run."""
    text = OmegaConf.to_yaml(cfg)
    return "${hydra:" not in text


def _remote_launcher(args: argparse.Namespace) -> bool:
    """Whether a multirun's jobs run on other machines (``hydra/launcher=slurm_ddp`` or
    ``submitit_slurm``): the submitting machine need not have their GPUs."""
    if not args.multirun:
        return False
    choices = [o.split("=", 1)[1] for o in args.overrides if o.startswith("hydra/launcher=")]
    return any("slurm" in choice for choice in choices)


def run_app(config_name: str, task: Callable[[DictConfig], Any],
            check: Callable[[DictConfig], None] | None = None) -> Any:
    """Run ``task`` as a Hydra app over ``recsys/conf/<config_name>.yaml``, mapping user errors
    to exit 2; return the task's value (of the last job in a multirun). ``check`` validates the
    composed config against this machine (e.g. a GPU trainer without CUDA) before Hydra writes
    anything, and again inside each job (sweeps, ``-cp``)."""
    results: list[Any] = []
    try:
        args = parse_args(sys.argv[1:])
        # -cp replaces the package's configs: Hydra alone knows how to resolve its path
        if not (args.help or args.hydra_help or args.info or args.shell_completion
                or args.config_path):
            job = _precheck(args.config_name or config_name, args.overrides, args.config_dir,
                            args.multirun)
            # a job launched elsewhere (SLURM) is checked on its own machine, inside the job
            if check is not None and not (args.cfg or args.resolve or _remote_launcher(args)):
                check(job)

        @hydra.main(config_path=CONFIG_DIR, config_name=config_name, version_base="1.3")
        def _main(cfg: DictConfig) -> Any:
            try:
                if check is not None:  # again per job: a sweep may change what was checked
                    check(cfg)
                apply_runtime(cfg.get("runtime"))
                results.append(task(cfg))
                return results[-1]
            except OmegaConfBaseException as err:
                _exit(ConfigError(str(err)))
            except RecsysError as err:
                _exit(err)

        _main()
    except RecsysError as err:
        _exit(err)
    return results[-1] if results else None


def _exit(err: RecsysError) -> None:
    """Print a user error on one line and leave with its exit code (Hydra lets SystemExit pass)."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
