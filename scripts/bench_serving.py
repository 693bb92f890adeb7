"""recsys-serve under load: an async HTTP client (asyncio streams, keep-alive) on loopback
against the service in its own process, beside the in-process Recommender call (the reference),
printing ratios.

Builds a bundle of ``--items`` items (toy dataset, clustered random item vectors, a small
TorchScript user tower, IVF-Flat index tuned to recall@10 >= .95), serves it with uvicorn (``--workers`` threads,
rules off: no mining outputs for this synthetic catalogue), then, each phase bounded by
``--seconds`` and ``--max-requests``:

1. p50 / p99 at ``--rate`` requests/s for known users and for new users given features + history;
2. the largest rate with p99 <= ``--p99-ms`` and no errors, for known and for new users: the rate
   doubles (or halves) from ``--rate`` until one passes and one fails, then is bisected until the
   two are within ``--resolution`` of each other (each probe ``--sweep-seconds`` long);
3. the same load while a reload swaps in another bundle (errors, p99, version changed);
4. the serving process's resident memory against the bundle's size on disk;
5. with the default rules on each request (a second server): p50 / p99 at ``--rate`` and the
   largest rate as in 2 (known users).

Latency is measured from each request's scheduled send time (open loop), so a server that falls
behind is charged for the queueing. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import psutil

TOKEN = "bench-token"


def build_bundle(root: Path, n_items: int, n_users: int, dim: int) -> Path:
    """A bundle over a toy dataset of ``n_items`` items with a scripted user tower."""
    import torch
    from torch import nn

    from recsys.evaluation.toy import make_toy_dataset
    from recsys.retrieval.embeddings import StaticEmbeddings
    from recsys.retrieval.index_spec import load_spec
    from recsys.serving import ExportSettings, export_bundle

    ds = make_toy_dataset(n_users=n_users, n_items=n_items, seed=0)
    ds.write(root / "data")

    class Tower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cat = nn.Embedding(8, dim)
            self.num = nn.Linear(1, dim)
            self.hist = nn.EmbeddingBag(n_items + 1, dim, mode="sum", padding_idx=0)

        def forward(self, ids: torch.Tensor, cat: torch.Tensor, num: torch.Tensor,
                    hist_items: torch.Tensor, hist_age: torch.Tensor, social: torch.Tensor,
                    social_mask: torch.Tensor) -> torch.Tensor:
            x = self.cat(cat).sum(1) + self.num(num) + self.hist(hist_items)
            return nn.functional.normalize(x, dim=-1)

    class Model(StaticEmbeddings):
        config: ClassVar[dict[str, Any]] = {
            "schema": {"history_len": 8, "social_len": 0, "social_dim": 0}}

        def user_tower_for_export(self) -> nn.Module:
            return tower

    torch.manual_seed(0)
    tower = Tower().eval()
    rng = np.random.default_rng(0)
    # clustered item vectors (as trained embeddings are: IVF needs few lists for its recall)
    centres = rng.normal(size=(256, dim))
    items = centres[rng.integers(256, size=n_items)] + 0.35 * rng.normal(size=(n_items, dim))
    users = centres[rng.integers(256, size=len(ds.users))] + 0.5 * rng.normal(size=(len(ds.users), dim))
    model = Model(items.astype(np.float32), users.astype(np.float32), "cosine")
    settings = ExportSettings(batch_size=4096, history_splits=None, item_columns=None,
                              user_tower=True)
    return export_bundle(model, ds, load_spec("ivf_flat"), root / "bundle", settings, {"n": n_items})


def serve(bundle: str, port: int, workers: int, rules: bool = False) -> None:
    """The service process (one bundle in memory, ``workers`` threads); with ``rules``, the
    default rules over a synthetic rule context of the bundle's size (scripts/bench_rules.py)."""
    os.environ["RECSYS_BENCH_TOKEN"] = TOKEN
    import faiss
    import torch
    import uvicorn

    from recsys.serving.app import create_app
    from recsys.serving.service import ServeSettings, bundle_loader
    from recsys.serving.state import ServingState, settle_memory

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    settings = ServeSettings(bundle_dir=Path(bundle), workers=workers, unknown_user="cold",
                             candidates_k=50, max_body_bytes=65536,
                             admin_token_env="RECSYS_BENCH_TOKEN", watch_seconds=0.0)
    loader = bundle_loader(settings)
    if rules:
        import yaml
        from bench_rules import make_context

        from recsys.rules import parse_rules
        from recsys.serving.online_rules import OnlineRules
        from recsys.serving.recommender import Recommender
        from recsys.serving.state import Served

        conf = Path(__file__).resolve().parents[1] / "recsys" / "conf" / "rules" / "default.yaml"
        rec = Recommender.load(bundle, unknown_user="cold")
        online = OnlineRules(parse_rules(yaml.safe_load(conf.read_text())),
                             make_context(len(rec.user_ids), rec.n_items))

        def loader(source: Path) -> Served:  # bundle_loader's, over the synthetic rule context
            rec = Recommender.load(source, unknown_user="cold")
            rec.warm_up()
            return Served(rec, online, source, source)

    state = ServingState(loader, settings.bundle_dir)
    state.on_change.append(settle_memory)  # as recsys-serve does
    state.reload()
    uvicorn.run(create_app(state, settings), host="127.0.0.1", port=port, log_level="error")


def import_rss(queue: Any) -> None:
    """Resident memory of a process that imported what the service imports, without a bundle."""
    import recsys.serving.app
    import recsys.serving.service  # noqa: F401

    queue.put(psutil.Process().memory_info().rss)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path, workers: int, rules: bool) -> tuple[Any, str]:
    port = free_port()
    proc = mp.get_context("spawn").Process(target=serve, args=(str(bundle), port, workers, rules),
                                            daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    return proc, url


def bodies(kind: str, user_ids: list[str], item_ids: list[str], n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if kind == "known":
            body: dict[str, Any] = {"user_id": user_ids[rng.integers(len(user_ids))], "k": 10}
        else:
            history = [item_ids[i] for i in rng.integers(len(item_ids), size=3)]
            body = {"new_user": {"features": {"age": int(rng.integers(18, 70)),
                                              "gender": str(rng.choice(["f", "m"])),
                                              "region": str(rng.choice(["north", "east"]))},
                                 "history": history}, "k": 10}
        out.append(json.dumps(body).encode())
    return out


class Loopback:
    """A small HTTP/1.1 keep-alive client over asyncio streams, at most ``limit`` connections
    (httpx parses HTTP in pure Python: about 3 ms of client CPU per request on this machine, as
    much as the server it measures, on the same cores)."""

    def __init__(self, url: str, limit: int = 256) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None,
                   timeout: float = 10.0) -> tuple[int, bytes]:
        """Status and body of ``POST path`` (JSON ``body``)."""
        async with self.slots:
            conn = self.idle.pop() if self.idle else await asyncio.open_connection(self.host,
                                                                                   self.port)
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
            head = (f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: "
                    f"application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n")
            try:
                conn[1].write(head.encode() + body)
                raw = await asyncio.wait_for(conn[0].readuntil(b"\r\n\r\n"), timeout)
                fields = dict(line.split(b":", 1) for line in raw.split(b"\r\n")[1:-2])
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                data = await asyncio.wait_for(
                    conn[0].readexactly(int(fields.get(b"content-length", b"0"))), timeout)
            except BaseException:
                conn[1].close()
                raise
            if fields.get(b"connection", b"").lower() == b"close":
                conn[1].close()
            else:
                self.idle.append(conn)
            return int(raw[9:12]), data

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def load(url: str, payloads: list[bytes], rate: float, seconds: float,
               during: Any = None, full: bool = True) -> dict[str, float]:
    """Open-loop POST /recommend at ``rate``/s for ``seconds`` (at most len(payloads)); an
    answer other than 200 (with 10 items when ``full``) counts as an error."""
    n = min(len(payloads), int(rate * seconds))
    lat: list[float] = []
    errors = 0
    kinds: dict[str, int] = {}
    client = Loopback(url)
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        nonlocal errors
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            status, body = await client.post("/recommend", payloads[i])
            ok = status == 200 and (len(json.loads(body)["items"]) == 10 or not full)
            what = f"HTTP {status}" if status != 200 else "short list"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError) as err:
            ok, what = False, type(err).__name__
        lat.append(time.perf_counter() - due)
        errors += not ok
        if not ok:
            kinds[what] = kinds.get(what, 0) + 1

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    extra = asyncio.create_task(during(client, start)) if during is not None else None
    await asyncio.gather(*tasks)
    if extra is not None:
        await extra
    client.close()
    ms = np.asarray(lat) * 1e3
    if kinds:
        print(f"  errors at {rate:.0f}/s: {kinds}")
    return {"n": n, "errors": errors, "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "rate": rate}


async def drain(url: str, payload: bytes) -> None:
    """Wait until the service has worked off what an overloaded probe left queued (the
    client gave up on those requests, the service did not): one request's answer."""
    client = Loopback(url)
    try:
        await client.post("/recommend", payload, timeout=300)
    finally:
        client.close()


def max_rate(url: str, payloads: list[bytes], start: float, args: argparse.Namespace,
             full: bool = True) -> tuple[float | None, float | None, list[dict[str, float]]]:
    """The largest rate passing (p99 <= ``args.p99_ms``, no errors) and the smallest failing
    one found by doubling / halving from ``start`` then bisecting, with every probe's result."""
    probes: list[dict[str, float]] = []

    def passes(rate: float) -> bool:
        asyncio.run(drain(url, payloads[0]))
        res = asyncio.run(load(url, payloads, rate, args.sweep_seconds, full=full))
        probes.append(res)
        return res["errors"] == 0 and res["p99"] <= args.p99_ms

    good: float | None = None
    bad: float | None = None
    rate = start
    while good is None or bad is None:
        if passes(rate):
            good = rate
            if rate >= args.max_rate:
                break
            rate = min(rate * 2, args.max_rate)
        else:
            bad = rate
            if rate <= args.min_rate:
                break
            rate = max(rate / 2, args.min_rate)
    while good is not None and bad is not None and bad - good > args.resolution * good:
        mid = round((good + bad) / 2)
        if passes(mid):
            good = mid
        else:
            bad = mid
    return good, bad, probes


def reference(bundle: Path, payloads: dict[str, list[bytes]], n: int) -> dict[str, dict[str, float]]:
    """The in-process Recommender call on the same requests (the reference)."""
    import faiss
    import torch

    from recsys.serving import Recommender

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    rec = Recommender.load(bundle, unknown_user="cold")
    rec.warm_up()  # as the service does before serving
    out = {}
    for kind, bodies_ in payloads.items():
        times = []
        for body in bodies_[:n]:
            req = json.loads(body)
            query = req.get("user_id") or {**req["new_user"]["features"],
                                            "history": req["new_user"]["history"]}
            t = time.perf_counter()
            rec.candidates([query], 10)
            times.append((time.perf_counter() - t) * 1e3)
        out[kind] = {"p50": statistics.median(times), "p99": float(np.percentile(times, 99))}
    return out


def print_best(best: dict[str, tuple[float | None, float | None]], args: argparse.Namespace
               ) -> None:
    """The largest passing rate of each kind, with the failing rate above it."""
    for kind, (good, bad) in best.items():
        above = f" ({bad:.0f}/s failed)" if bad is not None else f" (max-rate {args.max_rate:g})"
        print(f"largest rate with p99 <= {args.p99_ms:g} ms and 0 errors, {kind}: "
              f"{'none' if good is None else format(good, '.0f') + ' requests/s'}"
              f"{above if good is not None else ''}")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--sweep-seconds", type=float, default=3.0)
    ap.add_argument("--resolution", type=float, default=0.1,
                    help="bisection stops when failing - passing rate <= this x passing rate")
    ap.add_argument("--min-rate", type=float, default=5.0)
    ap.add_argument("--max-rate", type=float, default=1600.0)
    ap.add_argument("--max-requests", type=int, default=4000)
    ap.add_argument("--p99-ms", type=float, default=25.0)
    ap.add_argument("--no-rules", action="store_true", help="skip the rules-on phase")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    try:
        t = time.perf_counter()
        bundle = build_bundle(root, args.items, args.users, args.dim)
        manifest = json.loads((bundle / "manifest.json").read_text())
        print(f"bundle: {args.items} items, dim {args.dim}, {manifest['index']['factory']} "
              f"{manifest['index']['params']}, ANN recall@10 {manifest['ann_recall']['recall']:.3f}, "
              f"{dir_bytes(bundle) / 2**20:.1f} MiB on disk, built in {time.perf_counter() - t:.0f} s")
        import pandas as pd

        users = pd.read_parquet(bundle / "users.parquet")["user_id"].astype(str).tolist()
        items = pd.read_parquet(bundle / "items.parquet")["item_id"].astype(str).tolist()
        n = args.max_requests
        payloads = {k: bodies(k, users, items, n, seed) for seed, k in enumerate(("known", "new"))}
        ref = reference(bundle, payloads, 300)
        # the client's own long-lived objects (torch, pandas, ids, payloads) out of its garbage
        # collector's full passes, which would pause its event loop mid-measurement
        gc.collect()
        gc.freeze()

        proc, url = start_server(bundle, args.workers, rules=False)
        server = psutil.Process(proc.pid)
        asyncio.run(load(url, payloads["known"], 100, 1.0))  # warm-up

        rows = []
        for kind in ("known", "new"):
            res = asyncio.run(load(url, payloads[kind], args.rate, args.seconds))
            rows.append((f"{kind} users @ {args.rate:.0f}/s", res, ref[kind]["p50"]))
        best: dict[str, tuple[float | None, float | None]] = {}
        for kind in ("known", "new"):
            good, bad, probes = max_rate(url, payloads[kind], args.rate, args)
            best[kind] = (good, bad)
            rows += [(f"sweep {kind} @ {r['rate']:.0f}/s", r, ref[kind]["p50"]) for r in probes]

        rss_one = server.memory_info().rss  # before the reload: one bundle was ever loaded
        newer = shutil.copytree(bundle, root / "bundle2")
        m = json.loads((newer / "manifest.json").read_text())
        m["created_at"] = "2999-01-01T00:00:00+00:00"
        (newer / "manifest.json").write_text(json.dumps(m))
        reload_status: dict[str, Any] = {}

        async def reload_mid(client: Loopback, start: float) -> None:
            await asyncio.sleep(max(0.0, start + args.seconds / 2 - time.perf_counter()))
            t0 = time.perf_counter()
            status, _ = await client.post("/admin/reload",
                                          json.dumps({"bundle_dir": str(newer)}).encode(),
                                          {"authorization": f"Bearer {TOKEN}"}, timeout=120)
            reload_status.update(status=status, seconds=time.perf_counter() - t0)

        res = asyncio.run(load(url, payloads["known"], args.rate, args.seconds, reload_mid))
        rows.append((f"known @ {args.rate:.0f}/s + reload", res, ref["known"]["p50"]))
        rss = server.memory_info().rss
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        baseline_proc = ctx.Process(target=import_rss, args=(queue,))
        baseline_proc.start()
        baseline = queue.get(timeout=120)
        baseline_proc.join(10)

        print(f"\nin-process Recommender.candidates (reference): known p50 {ref['known']['p50']:.2f} ms"
              f" p99 {ref['known']['p99']:.2f} ms; new p50 {ref['new']['p50']:.2f} ms"
              f" p99 {ref['new']['p99']:.2f} ms")
        print(f"\n{'load':<28}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'p50 / in-process':>18}")
        for name, r, ref_p50 in rows:
            print(f"{name:<28}{r['n']:>9}{r['errors']:>8}{r['p50']:>9.2f}{r['p99']:>9.2f}"
                  f"{r['p50'] / ref_p50:>17.1f}x")
        print_best(best, args)
        print(f"reload during load: HTTP {reload_status.get('status')} in "
              f"{reload_status.get('seconds', float('nan')):.2f} s")
        on_disk = dir_bytes(bundle)
        print(f"serving process RSS {rss_one / 2**20:.0f} MiB before the reload, "
              f"{rss / 2**20:.0f} MiB after it (the new bundle is built beside the old one): "
              f"{baseline / 2**20:.0f} MiB of imported libraries (a process importing the service "
              f"without a bundle) + {(rss_one - baseline) / 2**20:.0f} MiB for the bundle, "
              f"{on_disk / 2**20:.0f} MiB on disk (x{(rss_one - baseline) / on_disk:.1f}); "
              f"{args.workers} worker threads share one copy")
        proc.terminate()
        proc.join(10)
        if not args.no_rules:
            proc, url = start_server(bundle, args.workers, rules=True)
            asyncio.run(load(url, payloads["known"], 100, 1.0, full=False))  # warm-up
            print(f"\nwith the default rules on each request (synthetic rule context of "
                  f"{len(users)} users x {args.items} items, {50} candidates):")
            res = asyncio.run(load(url, payloads["known"], args.rate, args.seconds, full=False))
            good, bad, probes = max_rate(url, payloads["known"], args.rate, args, full=False)
            for r in [res, *probes]:
                print(f"{'rules known @ ' + format(r['rate'], '.0f') + '/s':<28}{r['n']:>9}"
                      f"{r['errors']:>8}{r['p50']:>9.2f}{r['p99']:>9.2f}")
            print_best({"known, rules on": (good, bad)}, args)
            proc.terminate()
            proc.join(10)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
