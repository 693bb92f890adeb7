"""Retrieval: embedding export, FAISS item indexes, exact top-K and ANN recall."""

from recsys.retrieval.embeddings import (
    EmbeddingModel,
    Embeddings,
    StaticEmbeddings,
    read_embeddings,
)
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import IndexSpec
from recsys.retrieval.topk import EMPTY, check_k, exact_top_k

__all__ = [
    "EMPTY",
    "EmbeddingModel",
    "Embeddings",
    "IndexSpec",
    "ItemIndex",
    "StaticEmbeddings",
    "check_k",
    "exact_top_k",
    "read_embeddings",
]
