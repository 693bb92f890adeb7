"""Built-in synthetic marketing world: the package's default data source.

``generate(cfg, root)`` writes interactions, users, items and user_images parquet tables, the
procedurally rendered images and ``world.json`` (config, hash, row counts, latent ground truth).
"""

from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.parse import config_hash, parse_config
from recsys.data.synthetic.world import build_world, generate

__all__ = ["WorldConfig", "build_world", "config_hash", "generate", "parse_config"]
