"""Benchmark of data ingestion: our reader against a bare ``pyarrow.csv.read_csv`` of the same file.

Ingestion is :func:`recsys.data.canonical.load_canonical` on the interactions table: read the
CSV, map it onto the canonical schema, validate and type every column (ids, dates, events,
numbers, ratings). The reference is ``pyarrow.csv.read_csv`` of the same file with inferred
types. Both run in one process, alternately; we print the best wall time, the peak RSS growth
and the ratios, on two tables:

* a synthetic table of ``--rows`` interactions (string user ids, zero-padded item ids, datetimes,
  events, quantities, prices, channels);
* MovieLens-1M ``ratings.csv`` as ``conf/data/ml1m.yaml`` reads it (no timestamps, a rating
  threshold), when ``paths.ml1m_dir`` exists.

    python scripts/bench_data.py [--rows 10000000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from _bench_common import PeakRSS, rss_mib, timed
from hydra import compose, initialize_config_dir

from recsys.data.canonical import load_canonical
from recsys.data.quality import QualityReport
from recsys.data.schema import EVENTS
from recsys.data.source_config import TableSpec, parse_source_config
from recsys.errors import RecsysError
from recsys.runtime import apply_runtime, default_runtime

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"


def synthetic_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` interactions with realistic column types as CSV (built in Arrow, fast)."""
    rng = np.random.default_rng(seed)
    users = pc.binary_join_element_wise("u", pa.array(rng.integers(0, rows // 20 + 1, rows)).cast(pa.string()), "")
    items = pc.utf8_lpad(pa.array(rng.integers(0, 100_000, rows)).cast(pa.string()), 10, "0")
    seconds = np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 180 * 86400, rows).astype("timedelta64[s]")
    table = pa.table({
        "user": users,
        "item": items,
        "ts": pc.strftime(pa.array(seconds), format="%Y-%m-%d %H:%M:%S"),
        "event": pa.array(np.asarray(EVENTS)[rng.integers(0, len(EVENTS), rows)]),
        "qty": pa.array(rng.integers(1, 4, rows)),
        "price": pa.array(rng.uniform(1, 100, rows).round(2)),
        "channel": pa.array(np.asarray(["web", "app", "store"])[rng.integers(0, 3, rows)]),
    })
    pacsv.write_csv(table, path)


def synthetic_spec(path: Path) -> TableSpec:
    return TableSpec(
        name="interactions",
        path=path,
        columns={"user_id": "user", "item_id": "item", "timestamp": "ts", "event": "event",
                 "quantity": "qty", "price": "price", "channel": "channel"},
        date_format="%Y-%m-%d %H:%M:%S",
    )


def ml1m_spec() -> TableSpec | None:
    """The interactions table of ``conf/data/ml1m.yaml``, or None when the data is absent."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("data", overrides=["data=ml1m"])
    source = parse_source_config(cfg.data)
    spec = source.tables["interactions"]
    return spec if spec.path.is_file() else None


def measure(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall time (s) of one run and its peak RSS growth (MiB)."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    start = rss_mib()
    with PeakRSS() as mem:
        result, seconds = timed(fn)
    del result
    return seconds, max(mem.peak - start, 0.0)


def compare(label: str, spec: TableSpec, repeat: int) -> None:
    """Reference and ours alternately ``repeat`` times; best time and largest peak of each."""
    sides: dict[str, Callable[[], Any]] = {
        "pyarrow.csv.read_csv (reference)": lambda: pacsv.read_csv(spec.path),
        "recsys load_canonical (ours)": lambda: load_canonical(spec, QualityReport()),
    }
    best = {k: (float("inf"), 0.0) for k in sides}
    try:
        load_canonical(spec, QualityReport())
    except RecsysError as err:
        print(f"\n{label}: {spec.path.name}: ingestion refused: {err}")
        return
    for _ in range(repeat):
        for name, fn in sides.items():
            s, m = measure(fn)
            best[name] = (min(best[name][0], s), max(best[name][1], m))
    n = pacsv.read_csv(spec.path).num_rows
    mib = spec.path.stat().st_size / 2**20
    print(f"\n{label}: {spec.path.name}, {n:,} rows, {mib:.0f} MiB")
    print(f"{'method':<36}{'seconds':>9}{'rows/s':>14}{'peak +RSS MiB':>15}")
    for name, (s, m) in best.items():
        print(f"{name:<36}{s:>9.2f}{n / s:>14,.0f}{m:>15.0f}")
    (ref_s, ref_m), (ours_s, ours_m) = best.values()
    print(f"ratio ours / reference: time {ours_s / ref_s:.2f}x (goal <= 4x), peak memory {ours_m / max(ref_m, 1):.2f}x")


def main() -> None:
    apply_runtime(default_runtime())  # the apps' process settings (conf/runtime), both sides alike
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one synthetic ingestion")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        path = work / "interactions.csv"
        _, gen_s = timed(synthetic_csv, path, args.rows)
        print(f"synthetic table written in {gen_s:.1f}s")
        compare("synthetic", synthetic_spec(path), args.repeat)
        try:
            ml1m = ml1m_spec()
        except RecsysError as err:  # a package that cannot read data without timestamps
            print(f"\nML-1M: ingestion refused: {err}")
        else:
            if ml1m is None:
                print("\nML-1M: not found (set RECSYS_ML1M_DIR); skipped")
            else:
                compare("ML-1M", ml1m, args.repeat)
        if args.profile:
            import cProfile
            import pstats

            spec = synthetic_spec(path)
            cProfile.runctx("load_canonical(spec, QualityReport())", globals(), {"spec": spec}, str(work / "prof"))
            pstats.Stats(str(work / "prof")).sort_stats("cumtime").print_stats(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
