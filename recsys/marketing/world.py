"""The synthetic world behind a dataset, rebuilt from its generator config for the simulator.

The world directory's ``world.json`` records the hash of the config it was generated from; the
simulator rebuilds the latent users and items from its own generator config and refuses a world
whose recorded hash differs (the latent variables would not be the ones that made the data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.privacy import pseudonymise
from recsys.data.synthetic.catalogue import Catalogue
from recsys.data.synthetic.config import WorldConfig
from recsys.data.synthetic.parse import config_hash, parse_config
from recsys.data.synthetic.population import Population
from recsys.data.synthetic.utility import UtilityModel
from recsys.data.synthetic.world import latent_world
from recsys.data.synthetic.writer import WORLD_FILE, read_world
from recsys.errors import DataError

_REF_CHUNK = 512  # users per block when averaging utilities


@dataclass(frozen=True)
class LatentWorld:
    """A world's latent users and items, its utility tables and identity."""

    config: WorldConfig
    start: np.datetime64
    cat: Catalogue
    pop: Population
    model: UtilityModel
    fingerprint: str
    dataset_user_ids: pd.Index | None = None  # the users' ids as the dataset spells them

    @property
    def user_ids(self) -> pd.Index:
        if self.dataset_user_ids is not None:
            return self.dataset_user_ids
        return pd.Index(self.pop.table["user_id"].astype(str))

    @property
    def item_ids(self) -> pd.Index:
        return pd.Index(self.cat.table["item_id"].astype(str))

    def positions(self, ids: pd.Series, kind: str, source: str | None) -> np.ndarray:
        """World row of each user / item id; DataError naming the first unknown one."""
        index = self.user_ids if kind == "user" else self.item_ids
        pos = index.get_indexer(ids.astype(str))
        bad = np.flatnonzero(pos < 0)
        if bad.size:
            raise DataError(f"{kind} id {ids.iloc[bad[0]]!r} is not in the world {self.fingerprint}",
                            file=source, row=int(bad[0]) + 1, column=f"{kind}_id")
        return pos.astype(np.int64)


def from_config(w: WorldConfig) -> LatentWorld:
    """The latent world of a parsed generator config (no files read)."""
    start, cat, pop = latent_world(w)
    return LatentWorld(w, start, cat, pop, UtilityModel.build(w, pop, cat, start), config_hash(w))


def load_world(root: Path, generator: Mapping[str, Any],
               privacy: Mapping[str, Any] | None = None) -> LatentWorld:
    """The latent world of ``generator`` after checking that ``root`` was generated from it;
    ``privacy`` (preprocess.privacy) maps its user ids to the dataset's pseudonyms."""
    meta = read_world(root)
    if meta is None:
        raise DataError("no generated world here (world.json missing); run recsys-data "
                        "data=synthetic", file=str(root))
    w = parse_config(generator)
    digest = config_hash(w)
    recorded = meta.get("config_hash")
    if recorded != digest:
        raise DataError(f"world fingerprint mismatch: the world was generated from config "
                        f"{recorded}, the simulator's generator config is {digest}",
                        file=str(root / WORLD_FILE), column="config_hash")
    world = from_config(w)
    if privacy is not None and privacy.get("pseudonymise"):
        ids = pseudonymise(world.pop.table["user_id"].astype("string"), str(privacy["key"]),
                           int(privacy["hash_length"]))
        world = dataclasses.replace(world, dataset_user_ids=pd.Index(ids.astype(str)))
    return world
