"""Markdown sections of the marketing outputs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from recsys.marketing.backtest import GROUPS, wide
from recsys.marketing.window import Window
from recsys.mining.report import markdown_table


def render_backtest(table: pd.DataFrame, window: Window, bt: Any) -> str:
    """The backtest KPIs overall and per segment, channel and promotion, with their CIs."""
    parts = [
        "## Backtest on the holdout purchases\n",
        f"- cut-off {window.cutoff} (plan made with history before it), outcomes until "
        f"{window.end}",
        f"- cells: estimate [{bt.ci_level:.0%} bootstrap CI over users, {bt.n_boot} resamples]\n",
        "### Overall\n", markdown_table(wide(table, "overall")),
    ]
    for by in GROUPS:
        parts += [f"\n### Per {by}\n", markdown_table(wide(table, by))]
    return "\n".join(parts)
