"""Figures of the mining report: segment sizes, RFM distributions, segment profiles, rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PLOTS = {
    "segment_sizes.png": "Segment sizes",
    "rfm_distributions.png": "RFM distributions (buyers)",
    "segment_profiles.png": "Segment profiles (mean recency, frequency, monetary; scaled to the largest)",
    "association_rules.png": "Association rules: support vs lift",
}


def write_plots(rfm: pd.DataFrame, segments: pd.DataFrame, rules: pd.DataFrame, out: Path) -> None:
    """Write every figure of :data:`PLOTS` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg = segments.merge(rfm[["user_idx", "recency_days", "frequency", "monetary"]],
                         on="user_idx", how="left", suffixes=("_seg", ""))
    sizes = seg["segment"].astype(str).value_counts()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(sizes.index, sizes.to_numpy())
    ax.set_ylabel("users")
    ax.tick_params(axis="x", rotation=30)
    _save(fig, out / "segment_sizes.png")

    buyers = rfm[rfm["frequency"] > 0]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, col in zip(axes, ("recency_days", "frequency", "monetary"), strict=True):
        values = buyers[col].to_numpy(dtype=float)
        ax.hist(values[np.isfinite(values)], bins=30)
        ax.set_title(col)
    _save(fig, out / "rfm_distributions.png")

    prof = seg.groupby(seg["segment"].astype(str))[["recency_days", "frequency", "monetary"]].mean()
    scaled = prof / prof.abs().max().replace(0, 1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(len(scaled), 1)
    x = np.arange(scaled.shape[1])
    for i, (name, row) in enumerate(scaled.iterrows()):
        ax.bar(x + i * width, row.to_numpy(), width, label=str(name))
    ax.set_xticks(x + width * (len(scaled) - 1) / 2, list(scaled.columns))
    ax.legend(fontsize=8)
    _save(fig, out / "segment_profiles.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for level, g in rules.groupby("level"):
        ax.scatter(g["support"], g["lift"], s=12, alpha=0.7, label=f"{level} ({len(g)})")
    ax.set_xscale("log")
    ax.set_xlabel("support")
    ax.set_ylabel("lift")
    if len(rules):
        ax.legend()
    _save(fig, out / "association_rules.png")


def _save(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=90)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
