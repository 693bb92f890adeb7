"""``recsys-adjust``: outcome log + rules -> adjusted rules YAML and changelog.md, atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from recsys.data.atomic import atomic_directory
from recsys.mining.report import markdown_table
from recsys.rules.adjust import METRICS, Adjustment, AdjustSettings, adjust_rules
from recsys.rules.config import RulesConfig
from recsys.rules.outcomes import read_outcomes, validate_outcomes


@dataclass(frozen=True)
class AdjustOutcome:
    output_dir: Path
    changes: list[str]


def _metrics(table: pd.DataFrame, name: str, s: AdjustSettings, channels: bool = False) -> str:
    """Metric table with the metrics below their targets listed per row."""
    below = [
        ", ".join(m for m in METRICS
                  if row[m] < (s.target(str(key), m) if channels else s.targets[m]))
        for key, row in table.iterrows()
    ]
    out = table.assign(below_target=below).rename_axis(name).reset_index()
    return markdown_table(out, "{:.4f}")


def render_changelog(adj: Adjustment, s: AdjustSettings, outcomes: str, rules_source: str) -> str:
    """Changes with their reasons, then the metrics they were based on."""
    targets = ", ".join(f"{k} {v:g}" for k, v in s.targets.items())
    lines = [
        "# Rules changelog\n",
        f"- outcome log: `{outcomes}`",
        f"- rules adjusted: `{rules_source}`",
        f"- targets: {targets}; per channel: {s.per_channel or 'none'}",
        f"- bounds: max budget step {s.max_step:g}, coupon depth in [{s.depth_min:g}, "
        f"{s.depth_max:g}] by {s.depth_step:g}, min sends {s.min_sent}\n",
        "## Changes\n",
        *([f"- {c}" for c in adj.changes] or ["- none: every metric is on target or has too few "
                                               "sends"]),
        "\n## Channels\n",
        _metrics(adj.channels, "channel", s, channels=True),
        "\n## Promotions\n",
        _metrics(adj.promotions, "promotion", s),
        "\n## Segments\n",
        _metrics(adj.segments, "segment", s),
    ]
    return "\n".join(lines)


def run_adjust(
    rules: RulesConfig,
    outcomes_path: Path,
    output_dir: Path,
    settings: AdjustSettings,
    plan_path: Path | None = None,
) -> AdjustOutcome:
    """Validate the log, adjust the rules, write ``rules.yaml`` and ``changelog.md``."""
    plan = pd.read_parquet(plan_path) if plan_path is not None else None
    log = validate_outcomes(read_outcomes(outcomes_path), rules, str(outcomes_path), plan)
    adj = adjust_rules(rules, log, settings)
    text = yaml.safe_dump(adj.rules.raw, sort_keys=False, allow_unicode=True)
    header = f"# Adjusted by recsys-adjust from {outcomes_path}; see changelog.md\n"
    with atomic_directory(output_dir) as tmp:
        (tmp / "rules.yaml").write_text(header + text)
        (tmp / "changelog.md").write_text(
            render_changelog(adj, settings, str(outcomes_path), rules.source or "rules group")
        )
    return AdjustOutcome(output_dir, adj.changes)
