"""Data-quality bookkeeping: rows in/out per step, drop reasons, quarantine, null rates."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError

ROW = "_row"  # 1-based data-row number in the source file, carried through every step


@dataclass
class StepRecord:
    """One preprocessing step on one table."""

    table: str
    step: str
    rows_in: int
    rows_out: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class QualityReport:
    """Collects what every step did; renders JSON and Markdown. Rejected rows go to quarantine
    when the policy says so, else the first offending row raises :class:`DataError`."""

    policy: str = "error"  # error | quarantine
    files: dict[str, str] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    null_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    quarantined: dict[str, list[pd.DataFrame]] = field(default_factory=dict)

    def step(self, table: str, step: str, rows_in: int, rows_out: int, **detail: Any) -> None:
        self.steps.append(StepRecord(table, step, int(rows_in), int(rows_out), detail))

    def drop(self, table: str, reason: str, n: int) -> None:
        if n:
            per = self.dropped.setdefault(table, {})
            per[reason] = per.get(reason, 0) + int(n)

    def reject(
        self,
        table: str,
        df: pd.DataFrame,
        bad: np.ndarray | pd.Series,
        reason: str,
        column: str,
        policy: str | None = None,
    ) -> pd.DataFrame:
        """Handle rows flagged ``bad``: raise on the first (policy error) or quarantine them."""
        mask = np.asarray(bad, dtype=bool)
        if not mask.any():
            return df
        policy = policy or self.policy
        if policy == "error":
            first = df.loc[mask].iloc[0]
            value = first.get(column) if column in df.columns else None
            row = int(first[ROW]) if ROW in df.columns else None
            raise DataError(
                f"{reason} (value {value!r}; {int(mask.sum())} row(s) affected)",
                file=self.files.get(table, table),
                row=row,
                column=column,
            )
        rejected = df.loc[mask].copy()
        rejected["_reason"] = reason
        rejected["_column"] = column
        self.quarantined.setdefault(table, []).append(rejected)
        self.drop(table, reason, int(mask.sum()))
        return df.loc[~mask]

    def record_nulls(self, table: str, df: pd.DataFrame) -> None:
        cols = [c for c in df.columns if not c.startswith("_")]
        rates = df[cols].isna().mean() if len(df) else pd.Series(0.0, index=cols)
        self.null_rates[table] = {c: round(float(v), 6) for c, v in rates.items()}

    def quarantine_frames(self) -> dict[str, pd.DataFrame]:
        return {t: pd.concat(f, ignore_index=True) for t, f in self.quarantined.items() if f}

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "files": self.files,
            "steps": [s.__dict__ for s in self.steps],
            "dropped": self.dropped,
            "quarantined": {t: sum(len(x) for x in f) for t, f in self.quarantined.items() if f},
            "null_rates": self.null_rates,
        }

    def to_markdown(self) -> str:
        lines = ["# Data-quality report", "", "## Steps", "",
                 "| table | step | rows in | rows out | detail |", "|---|---|---:|---:|---|"]
        for s in self.steps:
            detail = ", ".join(f"{k}={v}" for k, v in s.detail.items())
            lines.append(f"| {s.table} | {s.step} | {s.rows_in} | {s.rows_out} | {detail} |")
        lines += ["", "## Dropped or quarantined rows", ""]
        if not self.dropped:
            lines.append("None.")
        for table, reasons in self.dropped.items():
            for reason, n in reasons.items():
                lines.append(f"- {table}: {n} row(s): {reason}")
        lines += ["", "## Null rates", ""]
        for table, rates in self.null_rates.items():
            nonzero = {c: r for c, r in rates.items() if r > 0}
            shown = ", ".join(f"{c} {r:.1%}" for c, r in nonzero.items()) or "no nulls"
            lines.append(f"- {table}: {shown}")
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path) -> None:
        (out_dir / "quality_report.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))
        (out_dir / "quality_report.md").write_text(self.to_markdown())
        frames = self.quarantine_frames()
        if frames:
            qdir = out_dir / "quarantine"
            qdir.mkdir(exist_ok=True)
            for table, frame in frames.items():
                frame.astype({c: str for c in frame.columns if frame[c].dtype == object}).to_parquet(
                    qdir / f"{table}.parquet", index=False
                )
