"""recsys: deep-learning recommender training for precision marketing."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("recsys")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["Recommender", "__version__"]


def __getattr__(name: str) -> Any:
    """Lazy exports: ``recsys.Recommender`` imports the serving stack on first use only."""
    if name == "Recommender":
        from recsys.serving import Recommender

        return Recommender
    raise AttributeError(f"module 'recsys' has no attribute {name!r}")
