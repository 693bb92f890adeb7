"""Baselines evaluated beside the trained models: popularity, repurchase, ALS, BPR, EASE,
ItemKNN, two-tower."""

from recsys.evaluation.baselines.bpr_mf import fit_bpr_mf
from recsys.evaluation.baselines.ease import fit_ease
from recsys.evaluation.baselines.implicit_mf import fit_als, fit_bpr
from recsys.evaluation.baselines.itemknn import fit_itemknn
from recsys.evaluation.baselines.popularity import PopularityRanker, popularity_scores
from recsys.evaluation.baselines.repurchase import RepurchaseRanker, history_weights
from recsys.evaluation.baselines.two_tower import embedding_ranker, load_embedding_model

__all__ = [
    "PopularityRanker",
    "RepurchaseRanker",
    "embedding_ranker",
    "fit_als",
    "fit_bpr",
    "fit_bpr_mf",
    "fit_ease",
    "fit_itemknn",
    "history_weights",
    "load_embedding_model",
    "popularity_scores",
]
