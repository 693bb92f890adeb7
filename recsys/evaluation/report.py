"""Evaluation output: ``metrics.json``, a Markdown report and its matplotlib plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from recsys.data.atomic import atomic_directory
from recsys.evaluation.evaluator import EvalResult

HEADLINE = ("recall", "ndcg", "hitrate", "mrr", "map")
COLD_WARM = ("cold_items", "rare_items", "warm_items", "cold_users", "warm_users")


def write_report(result: EvalResult, out_dir: Path, title: str = "Offline evaluation",
                 extra: dict[str, Any] | None = None) -> Path:
    """Write ``metrics.json`` (``result`` plus the ``extra`` keys), ``report.md`` and
    ``plots/*.png`` into ``out_dir`` atomically."""
    doc = {**result.to_dict(), **(extra or {})}
    with atomic_directory(Path(out_dir)) as tmp:
        (tmp / "metrics.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        plots = tmp / "plots"
        plots.mkdir()
        _plot_headline(doc, plots / "metrics_per_method.png")
        _plot_recall_vs_k(doc, plots / "recall_vs_k.png")
        _plot_cold_warm(doc, plots / "cold_vs_warm.png")
        (tmp / "report.md").write_text(markdown(doc, title))
    return Path(out_dir)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown(doc: dict[str, Any], title: str) -> str:
    """The Markdown report of a ``metrics.json`` document."""
    k = doc["k"]
    methods: dict[str, dict[str, float]] = doc["methods"]
    names = [f"{m}@{k}" for m in HEADLINE] + [f"coverage@{k}", f"novelty@{k}"]
    lines = [
        f"# {title}",
        "",
        f"Split `{doc['split']}` of `{doc['data']}`: {doc['n_users']} users ranked against all "
        f"{doc['n_items']} items; purchased items excluded: {doc['exclude_purchased']}.",
        "",
        f"## Metrics at K={k}",
        "",
    ]
    rows = [[m, *[_fmt(v.get(n)) for n in names], f"{doc['seconds'][m]:.2f}"]
            for m, v in methods.items()]
    lines += _table(["method", *names, "seconds"], rows)
    lines += ["", "![metrics per method](plots/metrics_per_method.png)", "",
              "## Recall against K", ""]
    lines += _table(["method", *[f"recall@{x}" for x in doc["ks"]]],
                    [[m, *[_fmt(v.get(f"recall@{x}")) for x in doc["ks"]]]
                     for m, v in methods.items()])
    lines += ["", "![recall against K](plots/recall_vs_k.png)", "", "## Slices", ""]
    slice_names = list(doc["slices"])
    header = ["method", *[f"{s} (n={doc['slices'][s]['n_users']})" for s in slice_names]]
    lines += _table(header, [
        [m, *[_fmt(doc["slices"][s]["methods"].get(m, {}).get(f"recall@{k}")) for s in slice_names]]
        for m in methods
    ])
    lines += ["", f"Values are recall@{k}.", "", "![cold against warm](plots/cold_vs_warm.png)", ""]
    return "\n".join(lines)


def _grouped_bars(ax: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=label)
    ax.set_xticks(x, groups, rotation=20, ha="right")
    ax.legend(fontsize="small")


def _plot_headline(doc: dict[str, Any], path: Path) -> None:
    k, methods = doc["k"], doc["methods"]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    series = {f"{m}@{k}": [v.get(f"{m}@{k}", 0.0) for v in methods.values()] for m in HEADLINE}
    _grouped_bars(ax, list(methods), series)
    ax.set_title(f"Metrics per method (K={k})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_recall_vs_k(doc: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, values in doc["methods"].items():
        ax.plot(doc["ks"], [values.get(f"recall@{x}", 0.0) for x in doc["ks"]], marker="o",
                label=name)
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("recall@K")
    ax.set_title("Recall against K")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_cold_warm(doc: dict[str, Any], path: Path) -> None:
    k = doc["k"]
    present = [s for s in COLD_WARM if s in doc["slices"]]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    series = {s: [doc["slices"][s]["methods"].get(m, {}).get(f"recall@{k}", 0.0)
                  for m in doc["methods"]] for s in present}
    _grouped_bars(ax, list(doc["methods"]), series)
    ax.set_title(f"Cold against warm: recall@{k}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
