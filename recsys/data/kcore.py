"""k-core filtering: keep the users and items with enough positive interactions, to a fixed point.

Removing a sparse item can push a user under the threshold and the other way round, so both
counts are recomputed until nothing changes (RecBole's ``min_user_inter_num`` /
``min_item_inter_num``). The result is the unique largest sub-table in which every user has at
least ``min_user_interactions`` and every item at least ``min_item_interactions`` positives.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.data.quality import QualityReport
from recsys.data.source_config import KCore, SourceConfig
from recsys.errors import ConfigError


def kcore_mask(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, kcore: KCore
) -> tuple[np.ndarray, np.ndarray, int]:
    """Surviving users and items (boolean per code) for positive interactions given as integer
    codes, and the number of passes until the fixed point."""
    alive = np.ones(len(users), dtype=bool)
    passes = 0
    while True:
        passes += 1
        ok_users = np.bincount(users[alive], minlength=n_users) >= kcore.min_user_interactions
        ok_items = np.bincount(items[alive], minlength=n_items) >= kcore.min_item_interactions
        still = alive & ok_users[users] & ok_items[items]
        if still.sum() == alive.sum():
            return ok_users, ok_items, passes
        alive = still


def kcore_filter(
    tables: dict[str, pd.DataFrame], source: SourceConfig, report: QualityReport
) -> dict[str, pd.DataFrame]:
    """Apply ``source.kcore`` to the interactions and drop the filtered users and items (and
    their user images) from every table; counts before and after go to the quality report."""
    kcore = source.kcore
    if not kcore.enabled:
        return tables
    inter = tables["interactions"]
    user_ids = pd.Index(pd.concat([tables["users"]["user_id"], inter["user_id"]]).astype("string").unique())
    item_ids = pd.Index(pd.concat([tables["items"]["item_id"], inter["item_id"]]).astype("string").unique())
    u = _codes(user_ids, inter["user_id"])
    i = _codes(item_ids, inter["item_id"])
    positive = inter["event"].isin(list(source.positive_events)).to_numpy()
    ok_users, ok_items, passes = kcore_mask(u[positive], i[positive], len(user_ids), len(item_ids), kcore)
    if not (ok_users[u[positive]] & ok_items[i[positive]]).any():
        raise ConfigError(
            f"data.kcore.min_user_interactions={kcore.min_user_interactions} and "
            f"data.kcore.min_item_interactions={kcore.min_item_interactions} leave no users "
            f"(of {len(np.unique(u[positive])):,} with positive interactions); lower them",
            file=report.files.get("interactions"),
        )
    keep = ok_users[u] & ok_items[i]
    out = dict(tables)
    out["interactions"] = inter[keep]
    detail = {"min_user_interactions": kcore.min_user_interactions,
              "min_item_interactions": kcore.min_item_interactions, "passes": passes}
    report.step("interactions", "k-core", len(inter), int(keep.sum()), **detail)
    report.drop("interactions", "k-core filter", int((~keep).sum()))
    for table, column, ids, ok in (("users", "user_id", user_ids, ok_users), ("items", "item_id", item_ids, ok_items),
                                   ("user_images", "user_id", user_ids, ok_users)):
        frame = tables[table]
        kept = frame[ok[_codes(ids, frame[column])]] if len(frame) else frame
        out[table] = kept
        if table != "user_images" or len(frame):
            report.step(table, "k-core", len(frame), len(kept), **detail)
            report.drop(table, "k-core filter", len(frame) - len(kept))
    return out


def _codes(index: pd.Index, values: pd.Series | Sequence[str]) -> np.ndarray:
    """Positions of ``values`` in ``index`` (all present), looked up once per distinct value."""
    cat = pd.Series(values).astype("string").astype("category")
    per_category = index.get_indexer(cat.cat.categories)
    return np.asarray(per_category, dtype=np.int64)[cat.cat.codes.to_numpy()]
