"""A Hydra callback that writes the table of a sweep's trials (``trials.csv`` and ``trials.md``)
into the sweep directory, rewritten after every job so an interrupted sweep keeps its table.
Each job appends its row to ``trials.jsonl`` under a file lock and rebuilds the tables from that
file, so jobs run in parallel processes (``hydra/launcher=joblib``) all land in one table.

Optuna's sweeper writes only the best trial (``optimization_results.yaml``); this table holds every
trial: its number, its swept values, the objective the app returned (``recsys-train``: the best
validation value of ``objective``) and the run directory it trained in.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf


class TrialsTable(Callback):
    """Appends one row per multirun job to ``trials.jsonl``; rewrites the tables beside it."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        ok = job_return.status == JobStatus.COMPLETED
        value = job_return.return_value if ok else None
        job_cfg = job_return.cfg
        run_dir = OmegaConf.select(job_cfg, "run_dir", default=None) if job_cfg is not None else None
        overrides = dict(o.split("=", 1) for o in (job_return.overrides or []) if "=" in o)
        row = {
            "trial": int(config.hydra.job.num),
            "objective": float(value) if isinstance(value, (int, float)) else None,
            "status": "completed" if ok else "failed",
            "overrides": overrides,
            "run_dir": run_dir or job_return.working_dir,
        }
        sweeper = config.hydra.sweeper
        swept = list((sweeper.get("params") or {}).keys()) if "params" in sweeper else []
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(sweep_dir / ".trials.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(sweep_dir / "trials.jsonl", "a") as log:
                log.write(json.dumps(row) + "\n")
            rows = [json.loads(line) for line in
                    (sweep_dir / "trials.jsonl").read_text().splitlines() if line.strip()]
            write_tables(sweep_dir, sorted(rows, key=lambda r: int(r["trial"])), swept,
                         maximize=str(sweeper.get("direction", "maximize")) != "minimize")


def _columns(rows: list[dict[str, Any]], swept: list[str]) -> list[str]:
    """Swept keys, else every override whose value differs between trials (all when one)."""
    if swept:
        return swept
    keys = sorted({k for r in rows for k in r["overrides"]})
    if len(rows) == 1:
        return keys
    return [k for k in keys if len({r["overrides"].get(k) for r in rows}) > 1]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = float(value) if "." in value or "e" in value else value
        except ValueError:
            return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_tables(sweep_dir: Path, rows: list[dict[str, Any]], swept: list[str],
                 maximize: bool = True) -> None:
    """``trials.csv`` in trial order (full precision) and ``trials.md`` best first (failed trials
    last, 6 significant digits)."""
    params = _columns(rows, swept)
    header = ["trial", "objective", "status", *params, "run_dir"]
    table = [[r["trial"], r["objective"], r["status"], *(r["overrides"].get(p) for p in params),
              r["run_dir"]] for r in rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if c is None else c for c in row] for row in table])
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _write(sweep_dir / "trials.csv", buffer.getvalue())

    def rank(row: list[Any]) -> float:
        value = row[1]
        if value is None or math.isnan(value):
            return math.inf
        return -value if maximize else value

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in sorted(table, key=rank)]
    _write(sweep_dir / "trials.md", "\n".join(lines) + "\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
