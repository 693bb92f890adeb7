"""``recsys-serve bundle_dir=... port=8000``: the HTTP recommendation service (needs the
``serve`` extra)."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from recsys.cli._app import run_app
from recsys.errors import ConfigError
from recsys.rules import rules_from_cfg
from recsys.serving.online_rules import ContextSettings
from recsys.serving.service import ServeSettings, bundle_loader
from recsys.serving.stage import pseudonymiser
from recsys.serving.state import ServingState, settle_memory, watch


def settings_of(cfg: DictConfig) -> ServeSettings:
    """The service's settings from the composed ``serve`` config."""
    rules, context = None, None
    if cfg.apply_rules:
        choice = HydraConfig.get().runtime.choices.get("rules") if HydraConfig.initialized() else None
        rules = rules_from_cfg(cfg.rules, f"conf/rules/{choice or 'default'}.yaml")
        aliases = OmegaConf.to_container(cfg.mining.columns, resolve=True)
        assert isinstance(aliases, dict)
        c = cfg.context
        context = ContextSettings(
            dataset_dir=Path(cfg.dataset_dir), mining_dir=Path(cfg.mining_dir),
            history_splits=list(c.history_splits), purchase_events=list(c.purchase_events),
            aliases={str(k): [str(x) for x in v] for k, v in aliases.items()},
            demand_window_days=float(c.demand_window_days),
            now=pd.Timestamp(c.now) if c.now else None)
    if int(cfg.workers) < 1:
        raise ConfigError(f"workers={cfg.workers} must be at least 1", column="workers")
    return ServeSettings(
        bundle_dir=Path(cfg.bundle_dir), workers=int(cfg.workers),
        unknown_user=str(cfg.unknown_user), candidates_k=int(cfg.candidates.k),
        max_body_bytes=int(cfg.max_body_bytes), admin_token_env=str(cfg.admin_token_env),
        watch_seconds=float(cfg.watch_seconds), rules=rules, context=context,
        pseudonym=pseudonymiser(cfg.get("privacy")))


def task(cfg: DictConfig) -> None:
    """Load the bundle (refusing a bad one with one line, exit 2) and serve until stopped."""
    try:
        import uvicorn

        from recsys.serving.app import create_app
    except ImportError as err:
        raise ConfigError(f"recsys-serve needs the serve extra (pip install 'recsys[serve]'): "
                          f"{err}") from None
    settings = settings_of(cfg)
    state = ServingState(bundle_loader(settings), settings.bundle_dir)
    state.on_change.append(settle_memory)
    state.reload()
    stop = threading.Event()
    if settings.watch_seconds > 0:
        watch(state, settings.watch_seconds, stop)
    app = create_app(state, settings)
    print(f"serving {state.current.resolved} ({state.current.version}) on "
          f"http://{cfg.host}:{cfg.port}")
    try:
        uvicorn.run(app, host=str(cfg.host), port=int(cfg.port), log_level=str(cfg.log_level))
    finally:
        stop.set()


def main() -> None:
    run_app("serve", task)


if __name__ == "__main__":
    main()
