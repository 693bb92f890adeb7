"""The campaign summary report (Markdown)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from recsys.mining.report import markdown_table


def _counts(series: pd.Series, name: str) -> pd.DataFrame:
    return series.astype(str).value_counts().rename_axis(name).reset_index(name="users")


def render_summary(
    campaign_id: str,
    plan: pd.DataFrame,
    rule_counts: dict[str, int],
    n_candidates: int,
    kpis: dict[str, Any] | None,
    metrics: pd.DataFrame | None,
) -> str:
    """Headline numbers, allocation per channel / promotion, rule counts, evaluation."""
    per_user = plan.groupby("user_idx").first()
    counts = pd.DataFrame({"rule": list(rule_counts), "count": list(rule_counts.values())})
    parts = [
        f"# Campaign {campaign_id}\n",
        f"- candidate rows: {n_candidates}",
        f"- recommended rows: {len(plan)} for {len(per_user)} users",
        f"- expected promotion cost: {per_user['expected_promotion_cost'].sum():.4f}",
        f"- items with a price suggestion: "
        f"{int(plan.loc[plan['pricing_rule'] != 'none', 'item_idx'].nunique())}",
        f"- social-image signal ignored (no consent) on "
        f"{int((~plan['social_image_used']).sum())} rows\n",
        "## Channels\n",
        markdown_table(_counts(per_user["channel"], "channel")),
        "\n",
        markdown_table(_counts(per_user["channel_reason"], "channel_reason")),
        "\n## Promotions\n",
        markdown_table(_counts(per_user["promotion"], "promotion")),
        "\n## Rules fired\n\nFilters, boosts, caps and pricing count rows; promotions and "
        "channels count users.\n",
        markdown_table(counts),
    ]
    if metrics is not None:
        parts += ["\n## Retrieval metrics before and after rules\n", markdown_table(metrics, "{:.4f}")]
    if kpis is not None:
        head = {k: v for k, v in kpis.items() if not isinstance(v, dict)}
        parts += ["\n## Business KPIs on the holdout\n",
                  markdown_table(pd.DataFrame({"kpi": list(head), "value": list(head.values())}), "{:.4f}")]
        seg = pd.DataFrame(kpis["per_segment"]).T.rename_axis("segment").reset_index()
        parts += ["\n### Per segment\n", markdown_table(seg, "{:.4f}")]
        rules = pd.DataFrame(kpis["rule_hit_rate"]).T.rename_axis("rule").reset_index()
        parts += ["\n### Hit rate per rule\n", markdown_table(rules, "{:.4f}")]
    return "\n".join(parts)
