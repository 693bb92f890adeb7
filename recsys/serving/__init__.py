"""Serving: bundles written by ``recsys-export`` and the :class:`Recommender` that reads them."""

from recsys.serving.export import ExportSettings, export_bundle, write_bundle
from recsys.serving.recommender import Recommender

__all__ = ["ExportSettings", "Recommender", "export_bundle", "write_bundle"]
