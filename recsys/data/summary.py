"""A short console summary of a processed dataset."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def print_summary(path: Path) -> None:
    """Row counts per table and dropped rows, from the manifest and quality report."""
    manifest = json.loads((path / "manifest.json").read_text())
    quality = json.loads((path / "quality_report.json").read_text())
    table = Table(title=f"processed dataset {manifest['name']} -> {path}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in manifest["row_counts"].items():
        table.add_row(name, f"{n:,}")
    console = Console()
    console.print(table)
    for tname, reasons in quality["dropped"].items():
        for reason, n in reasons.items():
            console.print(f"  {tname}: {n:,} row(s) {reason}")
    console.print(f"  split: {manifest['split']}")
