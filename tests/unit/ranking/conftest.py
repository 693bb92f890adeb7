"""Settings that fit the toy dataset (recsys.evaluation.toy): its columns, small budgets."""

from __future__ import annotations

import pytest

TOY = ["candidates.sources.siblings.column=category", "candidates.sources.popularity.segment=gender",
       "candidates.features.user_columns=[age]", "candidates.features.item_columns=[category_idx]",
       "candidates.features.affinity_columns=[colour]", "candidates.budget=20",
       "candidates.recall_at=[5,20]", "ranker.num_boost_round=20", "ranker.extra_periods=2",
       "ranker.params.min_data_in_leaf=5"]


@pytest.fixture(scope="session")
def toy_overrides() -> list[str]:
    """rank.yaml overrides for the toy dataset."""
    return list(TOY)
