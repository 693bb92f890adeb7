"""What the evaluator needs from a method and from a processed dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp


class Ranker(Protocol):
    """A recommendation method: the top ``k`` item indices for each user, best first.

    ``exclude`` is a CSR matrix ``[n_users, n_items]`` indexed by user_idx whose non-zeros must
    not be recommended; rows are padded with ``-1`` when fewer than ``k`` items remain.
    """

    @property
    def n_items(self) -> int: ...

    def top_k(
        self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray: ...


class DatasetLike(Protocol):
    """The processed dataset (``recsys.data.load_dataset``) as far as evaluation reads it."""

    @property
    def train(self) -> pd.DataFrame: ...

    @property
    def val(self) -> pd.DataFrame: ...

    @property
    def test(self) -> pd.DataFrame: ...

    @property
    def users(self) -> pd.DataFrame: ...

    @property
    def items(self) -> pd.DataFrame: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def path(self) -> Path: ...
