"""Helpers of the HTTP service tests: settings, an app over a bundle, copies of a bundle."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.serving.app import create_app
from recsys.serving.service import ServeSettings, bundle_loader
from recsys.serving.state import Served, ServingState

TOKEN_ENV = "RECSYS_TEST_ADMIN_TOKEN"


def serve_settings(bundle_dir: Path, **overrides: Any) -> ServeSettings:
    values: dict[str, Any] = {"bundle_dir": bundle_dir, "workers": 2, "unknown_user": "cold",
                              "candidates_k": 20, "max_body_bytes": 4096,
                              "admin_token_env": TOKEN_ENV, "watch_seconds": 0.0}
    return ServeSettings(**{**values, **overrides})


def make_app(settings: ServeSettings, loader: Callable[[Path], Served] | None = None) -> Any:
    state = ServingState(loader or bundle_loader(settings), settings.bundle_dir)
    return create_app(state, settings)


def copy_bundle(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None] | None = None
                ) -> Path:
    """A copy of a bundle whose manifest ``edit`` changed (the manifest carries no checksum)."""
    shutil.copytree(src, dst)
    if edit is not None:
        manifest = json.loads((dst / "manifest.json").read_text())
        edit(manifest)
        (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def newer(manifest: dict[str, Any]) -> None:
    manifest["created_at"] = "2999-01-01T00:00:00+00:00"
