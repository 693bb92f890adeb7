"""The mining report (Markdown)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from recsys.mining.plots import PLOTS
from recsys.mining.segmentation import Segmentation


def _cell(value: object, floatfmt: str) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else floatfmt.format(value)
    return str(value)


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A small Markdown table."""
    if frame.empty:
        return "_none_\n"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [_cell(v, floatfmt) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _rules_preview(rules: pd.DataFrame, level: str, n: int = 10) -> pd.DataFrame:
    top = rules[rules["level"] == level].head(n)
    return pd.DataFrame(
        {
            "antecedents": [", ".join(a) for a in top["antecedents"]],
            "consequents": [", ".join(c) for c in top["consequents"]],
            "support": top["support"].to_numpy(),
            "confidence": top["confidence"].to_numpy(),
            "lift": top["lift"].to_numpy(),
        }
    )


def _auc_table(summary: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for task in ("churn", "intent"):
        info = summary.get(task, {})
        if "skipped" in info:
            rows.append({"task": task, "model": "-", "holdout_auc": info["skipped"], "selected": ""})
            continue
        for name, m in info.get("models", {}).items():
            auc = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
            rows.append({"task": task, "model": name, "holdout_auc": auc,
                         "selected": "yes" if info.get("selected") == name else ""})
    return pd.DataFrame(rows)


def render_report(
    meta: dict[str, Any],
    rfm: pd.DataFrame,
    seg: Segmentation,
    profiles: pd.DataFrame,
    rules: pd.DataFrame,
    classifiers: dict[str, Any],
) -> str:
    """Markdown summary of every mining output."""
    buyers = rfm[rfm["frequency"] > 0]
    sizes = (
        seg.table.merge(rfm[["user_idx", "recency_days", "frequency", "monetary"]], on="user_idx")
        .groupby(["kmeans_segment", "segment"])
        .agg(users=("user_idx", "size"), recency_days=("recency_days", "mean"),
             frequency=("frequency", "mean"), monetary=("monetary", "mean"))
        .reset_index()
    )
    sil = pd.DataFrame({"k": list(seg.silhouettes), "silhouette": list(seg.silhouettes.values())})
    tiers = profiles["spend_tier"].value_counts().rename_axis("spend_tier").reset_index(name="users")
    parts = [
        "# Consumer mining report\n",
        f"- dataset: `{meta['dataset']}` (history splits {meta['history_splits']})",
        f"- reference time: {meta['now']}",
        f"- users: {len(rfm)}, buyers: {len(buyers)}, purchases: {meta['n_purchases']}",
        f"- item attributes used: {meta['columns']}\n",
        "## RFM\n",
        markdown_table(buyers[["recency_days", "frequency", "monetary"]].describe().T.reset_index()),
        f"\n## Segmentation\n\nK-Means k = {seg.best_k} (best silhouette); Ward clustering uses the "
        "same k.\n",
        markdown_table(sil),
        "\n",
        markdown_table(sizes),
        "\n## Profiles\n",
        f"Dimensions: demographics {meta['demographics']}, preferences, purchasing power, habits.\n",
        markdown_table(tiers),
        f"\nprice-sensitive users: {int(profiles['price_sensitive'].sum())}, "
        f"quality-focused users: {int(profiles['quality_focused'].sum())}\n",
        "\n## Association rules\n",
        f"item-level rules: {int((rules['level'] == 'item').sum())}, "
        f"category-level rules: {int((rules['level'] == 'category').sum())}\n",
        "Thresholds (minimum support = max(min_support, min_count / baskets)):\n",
        markdown_table(pd.DataFrame(meta.get("association_thresholds", {})).T
                       .rename_axis("level").reset_index(), "{:.5f}"),
        "\n### Item level (top by lift)\n",
        markdown_table(_rules_preview(rules, "item")),
        "\n### Category level (top by lift)\n",
        markdown_table(_rules_preview(rules, "category")),
        f"\n## Classifiers\n\nLabels from the last {classifiers['window_days']} days of history "
        f"(cutoff {classifiers['cutoff']}).\n",
        markdown_table(_auc_table(classifiers)),
        "\n## Plots\n",
        *[f"### {title}\n\n![{title}]({name})\n" for name, title in PLOTS.items()],
    ]
    return "\n".join(parts)
