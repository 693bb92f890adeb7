"""`make demo`: the whole pipeline on the built-in synthetic world, stage by stage (conf/demo.yaml).

Each stage is the real Hydra app a user would run; a failing stage stops the demo with its exit
code. At the end: recommendations for a few test users and the metrics table of every method.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def run(console: Console, title: str, app: str, args: list[str]) -> float:
    """Run ``python -m recsys.cli.<app> args``; exit the demo if it fails."""
    console.rule(f"[bold]{title}")
    t0 = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", f"recsys.cli.{app}", *args], cwd=ROOT)
    if code != 0:
        console.print(f"[red]stage failed ({code}): recsys-{app} {' '.join(args)}")
        sys.exit(code)
    seconds = time.perf_counter() - t0
    console.print(f"[green]{title.split(':')[0]} done in {seconds:.1f}s")
    return seconds


def metrics_table(path: Path) -> Table:
    """One row per method: the headline full-ranking metrics at K=12."""
    metrics = json.loads(path.read_text())
    cols = ["recall@12", "ndcg@12", "hitrate@12", "mrr@12", "map@12"]
    table = Table(title=f"{metrics['data']} / {metrics['split']}: full ranking over the catalogue")
    table.add_column("method", no_wrap=True)
    for c in cols:
        table.add_column(c, justify="right")
    for name, values in metrics["methods"].items():
        table.add_row(name, *(f"{values[c]:.4f}" if c in values else "-" for c in cols))
    return table


def main() -> int:
    cfg = OmegaConf.load(ROOT / "recsys" / "conf" / "demo.yaml")
    console = Console(width=max(Console().width, 110))
    t0 = time.perf_counter()
    timings = {s.title.split(" -> ")[0][:40]: run(console, s.title, s.app, list(s.args)) for s in cfg.stages}
    test = pd.read_parquet(ROOT / "outputs" / "data" / cfg.data / "test.parquet")
    users = test.loc[test["positive"], "user_id"].astype(str).drop_duplicates().head(int(cfg.users_to_show))
    for user in users:
        timings[f"recommend {user}"] = run(console, f"recommend: user {user}", "recommend",
                                           [*cfg.recommend_args, f"user={user}"])
    console.rule("[bold]results")
    console.print(metrics_table(ROOT / cfg.metrics_path))
    for name, seconds in timings.items():
        console.print(f"  {name:<42}{seconds:7.1f}s")
    console.print(f"[bold]demo finished in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
