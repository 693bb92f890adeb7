"""Benchmark of the data stage: ingest + preprocess a synthetic world of >= 1M interactions.

Runs, in one process and on the same CSV files, a bare ``pandas.read_csv`` of the three tables
(the reference) and our whole pipeline (read, validate, pseudonymise, clean, integrate, encode,
split, write Parquet atomically). Prints rows/s, peak memory and the time ratio.

    python scripts/bench_data.py [--users 60000] [--items 20000] [--sessions 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from _bench_common import PeakRSS, rss_mib, timed
from omegaconf import OmegaConf

from recsys.data.pipeline import build_dataset
from recsys.data.synthetic import generate
from recsys.runtime import apply_runtime, default_runtime

CONF = Path(__file__).resolve().parents[1] / "conf"


def world_as_csv(work: Path, users: int, items: int, sessions: float) -> Path:
    """Generate the synthetic world (no images) and write its tables as CSV."""
    gen = OmegaConf.to_container(OmegaConf.load(CONF / "data" / "synthetic.yaml").generator, resolve=True)
    assert isinstance(gen, dict)
    gen.update(n_users=users, n_items=items, sessions_per_user=sessions, images=False, social_images=False)
    raw = work / "world"
    generate(gen, raw)
    csv = work / "csv"
    csv.mkdir()
    for name in ("interactions", "users", "items"):
        df = pd.read_parquet(raw / f"{name}.parquet")
        if name == "interactions":
            df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
        df.to_csv(csv / f"{name}.csv", index=False)
    return csv


def pipeline_cfg(csv: Path, out: Path) -> Any:
    source = {
        "name": "bench", "source": "generic", "root": str(csv),
        "tables": {
            "interactions": {"path": "interactions.csv", "date_format": "%Y-%m-%d %H:%M:%S"},
            "users": {"path": "users.csv", "columns": {"age": "age", "gender": "gender", "region": "region",
                                                       "marketing_consent": "marketing_consent"},
                      "pii": {"name": "drop", "email": "drop", "postal_code": "coarsen"}},
            "items": {"path": "items.csv", "columns": {"price": "price", "stock": "stock"},
                      "categorical": ["category", "brand", "colour", "style"], "multi_hot": {"tags": "|"}},
        },
    }
    return OmegaConf.create({
        "data": source,
        "preprocess": OmegaConf.load(CONF / "preprocess" / "default.yaml"),
        "split": OmegaConf.load(CONF / "split" / "temporal.yaml"),
        "output_dir": str(out),
    })


def best_of_with_peak(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time over ``repeat`` runs, and the peak RSS growth (MiB) during a run."""
    times, peak = [], 0.0
    for _ in range(repeat):
        gc.collect()
        start = rss_mib()
        with PeakRSS() as mem:
            result, seconds = timed(fn)
            times.append(seconds)
        del result
        peak = max(peak, mem.peak - start)
    return min(times), peak


def main() -> None:
    apply_runtime(default_runtime())  # the apps' process settings (conf/runtime), both sides alike
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=64_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--sessions", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one pipeline run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        t0 = time.perf_counter()
        csv = world_as_csv(work, args.users, args.items, args.sessions)
        gen_s = time.perf_counter() - t0
        n = sum(1 for _ in (csv / "interactions.csv").open()) - 1
        mb = sum(p.stat().st_size for p in csv.iterdir()) / 2**20
        print(f"synthetic world: {n:,} interactions, {args.users:,} users, {args.items:,} items "
              f"({mb:.0f} MiB CSV), generated in {gen_s:.1f}s")
        files = [csv / f"{t}.csv" for t in ("interactions", "users", "items")]
        ref_s, ref_peak = best_of_with_peak(lambda: [pd.read_csv(f) for f in files], args.repeat)
        cfg = pipeline_cfg(csv, work / "out")
        ours_s, ours_peak = best_of_with_peak(lambda: build_dataset(cfg), args.repeat)
        print(f"{'method':<34}{'seconds':>9}{'rows/s':>14}{'peak +RSS MiB':>14}")
        print(f"{'pandas.read_csv (reference)':<34}{ref_s:>9.2f}{n / ref_s:>14,.0f}{ref_peak:>14.0f}")
        print(f"{'recsys data pipeline (ours)':<34}{ours_s:>9.2f}{n / ours_s:>14,.0f}{ours_peak:>14.0f}")
        print(f"ratio ours / read_csv: {ours_s / ref_s:.2f}x (goal <= 3x)")
        if args.profile:
            import cProfile
            import pstats

            cProfile.runctx("build_dataset(cfg)", globals(), {"cfg": cfg}, str(work / "prof"))
            pstats.Stats(str(work / "prof")).sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
