"""What the H&M leave-last-day test purchases leave to learn: shares of repurchases, new colours
of products already bought (same product code, the first 7 digits of ``article_id``) and items
never bought before the test, and Recall@12 of heuristics that use them. Data, history (train +
val) and the repurchase baseline are those of ``recsys-evaluate`` / ``scripts/bench_quality.py``.

    python scripts/hm_headroom.py [--data outputs/data/hm]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from recsys.config import as_dict
from recsys.data import load_dataset
from recsys.evaluation.eval_data import EvalData, prepare_eval_data
from recsys.evaluation.methods import build_methods
from recsys.evaluation.metrics import ranking_metrics
from recsys.evaluation.rankers import rank_stored
from recsys.retrieval.topk import EMPTY

ROOT = Path(__file__).resolve().parents[1]
K = 12


def recall(top: np.ndarray, data: EvalData) -> float:
    return ranking_metrics(top, data.truth[data.users], [K])[f"recall@{K}"]


def sibling_lists(data: EvalData, code: np.ndarray) -> list[list[int]]:
    """Per evaluated user: items sharing a product code with their purchases, most recent
    purchase first, never an item they bought."""
    by_code: dict[str, list[int]] = {}
    for item, c in enumerate(code):
        by_code.setdefault(c, []).append(item)
    hist = data.history_frame.sort_values("timestamp", ascending=False, kind="stable")
    recent = hist.groupby("user_idx", sort=False)["item_idx"].apply(lambda s: list(dict.fromkeys(s)))
    out = []
    for u in data.users:
        bought = set(data.history[u].indices)
        sibs = (s for b in recent.get(u, []) for s in by_code[code[b]] if s not in bought)
        out.append(list(dict.fromkeys(sibs)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "outputs" / "data" / "hm")
    args = parser.parse_args()
    ds = load_dataset(args.data)
    data = prepare_eval_data(ds, "test")
    methods = OmegaConf.load(ROOT / "recsys" / "conf" / "eval" / "default.yaml").methods
    repurchase = build_methods({"repurchase": as_dict(methods.repurchase, "eval.methods.repurchase")}, data,
                               batch_size=1024, seed=0, threads=1)["repurchase"]
    code = ds.items.sort_values("item_idx")["item_id"].astype(str).str[:7].to_numpy()

    truth = data.truth[data.users].tocoo()
    users, items = data.users[truth.row], truth.col
    bought = np.asarray(data.history[users, items]).ravel() > 0
    seen = np.diff(data.history.tocsc().indptr) > 0
    sibs = sibling_lists(data, code)
    user_codes = [{code[i] for i in data.history[u].indices} for u in data.users]
    new_colour = np.array([not b and code[i] in user_codes[r]
                           for r, i, b in zip(truth.row, items, bought, strict=True)])
    print(f"{len(data.users)} test users, {truth.nnz} test purchases (train+val history)")
    print(f"  bought before by the same user (repurchase) : {bought.mean():6.1%}")
    print(f"  new colour of a product the user bought     : {new_colour.mean():6.1%}")
    print(f"  never bought by anyone before the test      : {(~seen[items]).mean():6.1%} "
          f"(on {len(set(items[~seen[items]]))} of the {data.n_items} catalogue items)")

    base = repurchase.top_k(data.users, K)  # own history by weight, then recent popularity
    print(f"Recall@{K}:")
    print(f"  {'repurchase baseline (conf/eval)':50s}: {recall(base, data):.4f}")
    rows, cols, _ = rank_stored(repurchase.history[data.users], repurchase.fallback_np)
    starts = np.searchsorted(rows, np.arange(len(data.users) + 1))  # rows come sorted by rank
    for n in (3, 5, 8, 10):
        top = np.full((len(data.users), K), EMPTY, dtype=np.int64)
        for r in range(len(data.users)):
            head = cols[starts[r] : min(starts[r] + n, starts[r + 1])].tolist()
            ranked = list(dict.fromkeys([*head, *sibs[r], *base[r].tolist()]))[:K]
            top[r, : len(ranked)] = ranked
        print(f"  {f'top-{n} history, then new colours of recent buys':50s}: {recall(top, data):.4f}")


if __name__ == "__main__":
    main()
