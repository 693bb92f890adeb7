"""Measured memory per million users and items (on CPU), for docs/scaling.md.

1. Embedding tables of the default two-tower config (``conf/model/two_tower.yaml``: 32-d id
   tables, sparse gradients above ``sparse_min_rows``) with SparseAdam's state after one step,
   at ``--rows`` rows, from the tensors' bytes, scaled to 1M rows.
2. Training's feature tables (``recsys.training.tables``) of a synthetic world (``--users`` x
   ``--items``), split into the user side (histories, demographics) and the item side, per 1M.
3. FAISS indexes over ``--items-index`` random 64-d vectors built through ``ItemIndex`` from the
   shipped configs (flat, ivf_flat, ivf_pq with and without its exact re-rank), serialised
   bytes per 1M items.

    python scripts/measure_scaling.py [--rows 1000000] [--users 20000] [--items 5000]
                                      [--items-index 250000] [--dataset-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import load_spec

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"
MIB = 2**20
PER = 1_000_000


def embedding_bytes(rows: int, dim: int) -> dict[str, int]:
    """Parameter, gradient and SparseAdam state bytes of a ``rows`` x ``dim`` sparse table."""
    table = torch.nn.Embedding(rows, dim, sparse=True)
    opt = torch.optim.SparseAdam(table.parameters(), lr=1e-3)
    table(torch.randint(rows, (4096,))).sum().backward()
    assert table.weight.grad is not None
    grad = table.weight.grad.coalesce()
    grad_bytes = grad.values().nbytes + grad.indices().nbytes
    opt.step()
    state = sum(v.nbytes for s in opt.state.values() for v in s.values() if torch.is_tensor(v))
    return {"weights": table.weight.nbytes, "optimizer": state, "grad (4096-row batch)": grad_bytes}


def table_bytes(dataset_dir: Path) -> tuple[int, int, dict[str, int]]:
    """(users, items, bytes per field) of training's feature tables for ``dataset_dir``."""
    from recsys.training.train import build_datamodule

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset_dir={dataset_dir}", "experiment=id_only",
                                          "datamodule.image_features_dir=null"])
    tables = build_datamodule(cfg).tables
    assert tables is not None
    sizes = {f.name: getattr(tables, f.name).nbytes for f in dataclasses.fields(tables)
             if isinstance(getattr(tables, f.name), np.ndarray)}
    sizes["eval_history"] = sum(a.nbytes for h in tables.eval_history.values()
                                for a in vars(h).values() if isinstance(a, np.ndarray))
    sizes["positives (count)"] = len(tables.seq_items)
    return tables.schema.n_users, tables.schema.n_items, sizes


def index_bytes(n: int, dim: int) -> dict[str, int]:
    """Serialised bytes of the shipped index configs over ``n`` random ``dim``-d vectors."""
    x = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    specs = {"Flat (exact)": load_spec("flat"), "IVF,Flat": load_spec("ivf_flat"),
             "IVF,PQ + exact re-rank (conf ivf_pq)": load_spec("ivf_pq"),
             "IVF,PQ codes only": load_spec("ivf_pq", factory="IVF{nlist},PQ{pq_m}np",
                                            search_params={"nprobe": 8})}
    return {name: len(ItemIndex.build(x, spec, "cosine").to_bytes()) for name, spec in specs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=PER)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--items-index", type=int, default=250_000)
    ap.add_argument("--dataset-dir", type=Path, default=None)
    args = ap.parse_args()
    torch.manual_seed(0)

    print(f"== embedding table, 32-d, {args.rows:,} rows (MiB per 1M rows)")
    for name, b in embedding_bytes(args.rows, 32).items():
        scale = PER / args.rows if name != "grad (4096-row batch)" else 1.0
        print(f"  {name:28s} {b * scale / MIB:9.1f}")

    work = Path(tempfile.mkdtemp(prefix="measure_scaling_"))
    try:
        data = args.dataset_dir
        if data is None:
            from bench_train import synthetic_dataset

            data = synthetic_dataset(work / "data", args.users, args.items)
        users, items, sizes = table_bytes(data)
        positives = sizes.pop("positives (count)")
        user_side = sum(b for k, b in sizes.items() if not k.startswith("item_"))
        item_side = sum(b for k, b in sizes.items() if k.startswith("item_"))
        print(f"== training feature tables, synthetic world {users:,} users x {items:,} items "
              f"(MiB per 1M)")
        print(f"  user side (histories, demographics) per 1M users {user_side * PER / users / MIB:9.1f}")
        print(f"  item side (attributes, counts) per 1M items      {item_side * PER / items / MIB:9.1f}")
        seq = sum(b for k, b in sizes.items() if k.startswith("seq_"))
        print(f"  {positives:,} training positives ({positives / users:.1f} per user): "
              f"{seq / positives:.0f} bytes each in the seq_* arrays")
        for k, b in sorted(sizes.items(), key=lambda kv: -kv[1])[:6]:
            print(f"    {k:20s} {b / MIB:8.2f} MiB here")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"== FAISS index over {args.items_index:,} x 64 vectors (MiB per 1M items, scaled)")
    for name, b in index_bytes(args.items_index, 64).items():
        print(f"  {name:38s} {b * PER / args.items_index / MIB:9.1f}")


if __name__ == "__main__":
    main()
