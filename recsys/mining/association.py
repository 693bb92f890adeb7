"""Association rules (mlxtend FP-growth or Apriori) over baskets, at item and category level."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth
from mlxtend.preprocessing import TransactionEncoder

from recsys.mining.config import AssociationConfig, Thresholds
from recsys.mining.grouping import lists_by_key
from recsys.mining.rfm import with_orders

RULE_COLUMNS = [
    "level", "antecedents", "consequents", "antecedent_support", "consequent_support",
    "support", "confidence", "lift", "n_baskets",
]


def baskets(purchases: pd.DataFrame, values: pd.Series, key: str) -> list[list[str]]:
    """Distinct ``values`` (aligned with ``purchases``) per basket: per user and day, or per user."""
    frame = pd.DataFrame({"user_idx": purchases["user_idx"].to_numpy(), "v": values.to_numpy()})
    if key == "order":
        frame["order"] = with_orders(purchases)["order"].to_numpy()
    frame = frame.dropna(subset=["v"])
    frame["v"] = frame["v"].astype(str)
    group = ["user_idx", "order"] if key == "order" else ["user_idx"]
    frame = frame.drop_duplicates([*group, "v"]).sort_values([*group, "v"], kind="stable")
    gid = frame.groupby(group, sort=False).ngroup()
    return list(lists_by_key(gid, frame["v"]))


def mine_rules(
    transactions: Sequence[Sequence[str]], thresholds: Thresholds, algorithm: str, max_len: int
) -> pd.DataFrame:
    """Rules with support (at least ``thresholds.support(n_baskets)``), confidence and lift at
    or above ``thresholds``, strongest first."""
    n = len(transactions)
    empty = pd.DataFrame(columns=RULE_COLUMNS[1:])
    if n == 0:
        return empty
    min_support = thresholds.support(n)
    counts = pd.Series([v for t in transactions for v in t]).value_counts()
    frequent = set(counts[counts / n >= min_support].index)
    kept = [[v for v in t if v in frequent] for t in transactions]
    if len(frequent) < 2:
        return empty
    encoder = TransactionEncoder()
    onehot = encoder.fit(kept).transform(kept, sparse=True)
    df = pd.DataFrame.sparse.from_spmatrix(onehot, columns=[str(c) for c in encoder.columns_])
    finder = fpgrowth if algorithm == "fpgrowth" else apriori
    itemsets = finder(df, min_support=min_support, use_colnames=True, max_len=max_len)
    if itemsets.empty or itemsets["itemsets"].map(len).max() < 2:
        return empty
    rules = association_rules(
        itemsets, num_itemsets=n, metric="confidence", min_threshold=thresholds.min_confidence,
        return_metrics=["antecedent support", "consequent support", "support", "confidence", "lift"],
    )
    rules = rules[rules["lift"] >= thresholds.min_lift]
    out = pd.DataFrame(
        {
            "antecedents": [sorted(a) for a in rules["antecedents"]],
            "consequents": [sorted(c) for c in rules["consequents"]],
            "antecedent_support": rules["antecedent support"].to_numpy(dtype=float),
            "consequent_support": rules["consequent support"].to_numpy(dtype=float),
            "support": rules["support"].to_numpy(dtype=float),
            "confidence": rules["confidence"].to_numpy(dtype=float),
            "lift": rules["lift"].to_numpy(dtype=float),
        }
    )
    return out.sort_values(["lift", "confidence"], ascending=False, kind="stable").reset_index(drop=True)


def mine_association_rules(
    purchases: pd.DataFrame,
    items: pd.DataFrame,
    category_column: str | None,
    basket_key: str,
    cfg: AssociationConfig,
) -> pd.DataFrame:
    """Item-level and category-level rules in one table (``level`` column); ``attrs["n_baskets"]``
    holds the number of baskets per level."""
    levels: list[tuple[str, pd.Series, Thresholds]] = [
        ("item", purchases["item_idx"].map(items["item_id"]), cfg.item)
    ]
    if category_column is not None:
        levels.append(("category", purchases["item_idx"].map(items[category_column]), cfg.category))
    frames, n_baskets = [], {}
    for level, values, thresholds in levels:
        txns = baskets(purchases, values, basket_key)
        rules = mine_rules(txns, thresholds, cfg.algorithm, cfg.max_len)
        frames.append(rules.assign(level=level, n_baskets=len(txns)))
        n_baskets[level] = len(txns)
    out = pd.concat(frames, ignore_index=True)[RULE_COLUMNS]
    out.attrs["n_baskets"] = n_baskets  # per level, also where no rule was found
    out["n_baskets"] = out["n_baskets"].astype("int64")
    for col in ("antecedent_support", "consequent_support", "support", "confidence", "lift"):
        out[col] = out[col].astype("float64")
    return out
