"""Rich table of recommendations for the terminal."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

HIDDEN = ("item_idx", "image_path", "first_seen")


def recommendations_table(frame: pd.DataFrame, title: str) -> Table:
    """A table with rank, item id, score and the item attributes of ``frame``."""
    table = Table(title=title)
    columns = [c for c in frame.columns if c not in HIDDEN]
    for col in columns:
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    return table


def print_recommendations(frame: pd.DataFrame, title: str, console: Console | None = None) -> None:
    """Print :func:`recommendations_table` to ``console`` (stdout by default)."""
    (console or Console()).print(recommendations_table(frame, title))
