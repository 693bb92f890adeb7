"""Settings of the HTTP service and how it loads a bundle (with its rules) for serving."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import BundleError
from recsys.rules import RulesConfig
from recsys.serving.online_rules import ContextSettings, OnlineRules
from recsys.serving.recommender import Recommender
from recsys.serving.state import Served


@dataclass(frozen=True)
class ServeSettings:
    """``conf/serve.yaml`` as the service reads it (see there for each value)."""

    bundle_dir: Path
    workers: int
    unknown_user: str
    candidates_k: int
    max_body_bytes: int
    admin_token_env: str
    watch_seconds: float
    rules: RulesConfig | None = None
    context: ContextSettings | None = None
    pseudonym: Callable[[str], str] | None = None

    def admin_token(self) -> str | None:
        """The admin token from the environment (None: admin endpoints refuse everyone)."""
        return os.environ.get(self.admin_token_env) or None


def check_same_data(rec: Recommender, rules: OnlineRules, root: Path) -> None:
    """The rules' user and item rows must be the bundle's: both from one dataset."""
    bundle = rec.manifest.get("data_fingerprint")
    if rules.data_fingerprint is not None and bundle != rules.data_fingerprint:
        raise BundleError(f"bundle was exported from dataset {bundle!r}, the rules read dataset "
                          f"{rules.data_fingerprint!r}: export a bundle of the served dataset",
                          file=str(root / "manifest.json"), column="data_fingerprint")


def bundle_loader(settings: ServeSettings) -> Callable[[Path], Served]:
    """Loads a bundle (verified: checksums, format and package version) and, when rules are
    configured, their context; a BundleError / DataError when either cannot be loaded."""
    def load(source: Path) -> Served:
        resolved = Path(os.path.realpath(source))
        rec = Recommender.load(resolved, unknown_user=settings.unknown_user,
                               pseudonym=settings.pseudonym)
        rec.warm_up()
        rules = None
        if settings.rules is not None and settings.context is not None:
            rules = OnlineRules.load(settings.rules, settings.context)
            check_same_data(rec, rules, resolved)
        return Served(rec, rules, Path(source), resolved)

    return load
