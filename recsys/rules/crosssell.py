"""Cross-sell pairs from association rules: (user, item) where a rule's antecedents were bought."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.arrays import member
from recsys.rules.context import RuleContext


def _explode(rules: pd.DataFrame, column: str, labels: pd.Index) -> pd.DataFrame:
    """(rule, code) per member of ``column`` (code -1 when the label is unknown)."""
    sizes = rules[column].map(len).to_numpy(dtype=np.int64)
    flat = [str(v) for values in rules[column] for v in values]
    return pd.DataFrame({"rule": np.repeat(np.arange(len(rules)), sizes),
                         "code": labels.get_indexer(pd.Index(flat, dtype=object))})


def _fired_consequents(rules: pd.DataFrame, owned: pd.DataFrame, labels: pd.Index) -> pd.DataFrame:
    """(user_idx, code) for every rule whose antecedent codes the user all owns."""
    users = owned["user_idx"].to_numpy()
    if len(users) == 0 or (users == users[0]).all():
        return _fired_for_one_user(rules, owned, labels)
    return _fired_by_join(rules, owned, labels)


def _fired_for_one_user(rules: pd.DataFrame, owned: pd.DataFrame, labels: pd.Index
                        ) -> pd.DataFrame:
    """:func:`_fired_by_join` for the history of at most one user (a request at serving time):
    set look-ups in place of the joins, whose fixed cost dominates there; the same pairs."""
    have = set(owned["code"].tolist())
    ante, cons = rules["antecedents"].tolist(), rules["consequents"].tolist()
    flat = [str(v) for values in ante + cons for v in values]
    codes = labels.get_indexer(pd.Index(flat, dtype=object)).tolist() if flat else []
    fired: set[int] = set()
    at = sum(len(a) for a in ante)
    start = 0
    for need, gives in zip(ante, cons, strict=True):
        mine = codes[start:start + len(need)]
        start += len(need)
        if mine and all(c in have for c in mine):
            fired.update(c for c in codes[at:at + len(gives)] if c >= 0)
        at += len(gives)
    out = np.fromiter(sorted(fired), dtype=np.int64, count=len(fired))
    user = int(owned["user_idx"].iloc[0]) if len(owned) else 0
    return pd.DataFrame({"user_idx": np.full(len(out), user, dtype=np.int64), "code": out})


def _fired_by_join(rules: pd.DataFrame, owned: pd.DataFrame, labels: pd.Index) -> pd.DataFrame:
    """(user_idx, code) for every rule whose antecedent codes the user all owns, any users."""
    need = rules["antecedents"].map(len).to_numpy(dtype=np.int64)
    hits = owned.merge(_explode(rules, "antecedents", labels), on="code")
    per_rule = hits.groupby(["user_idx", "rule"]).size().reset_index(name="n")
    per_rule = per_rule[per_rule["n"].to_numpy() == need[per_rule["rule"].to_numpy()]]
    cons = _explode(rules, "consequents", labels)
    out = per_rule[["user_idx", "rule"]].merge(cons, on="rule")[["user_idx", "code"]]
    return out[out["code"] >= 0].drop_duplicates()


def _keys(user: np.ndarray, code: np.ndarray, n_codes: int) -> np.ndarray:
    return user.astype(np.int64) * np.int64(n_codes) + code.astype(np.int64)


def cross_sell_mask(
    ctx: RuleContext,
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    level: str,
    min_lift: float,
) -> np.ndarray:
    """Rows whose item (level item) or item category (level category) a rule recommends to a user
    who bought all of the rule's antecedents; ``both`` ORs the two levels."""
    rules = ctx.association[ctx.association["lift"] >= min_lift]
    hist = ctx.history[["user_idx", "item_idx"]]
    hist = hist[member(user_pos, hist["user_idx"].to_numpy())].drop_duplicates()
    mask = np.zeros(len(user_pos), dtype=bool)
    if level in ("item", "both"):
        item_rules = rules[rules["level"] == "item"].reset_index(drop=True)
        labels = pd.Index(ctx.items["item_id"].astype(str).to_numpy(dtype=object))
        owned = hist.rename(columns={"item_idx": "code"})
        pairs = _fired_consequents(item_rules, owned, labels)
        n = len(ctx.items)
        mask |= member(_keys(pairs["user_idx"].to_numpy(), pairs["code"].to_numpy(), n),
                       _keys(user_pos, item_pos, n))
    if level in ("category", "both"):
        cat_rules = rules[rules["level"] == "category"].reset_index(drop=True)
        cats = pd.Categorical(ctx.items["category"].astype("object"))
        codes = np.asarray(cats.codes, dtype=np.int64)
        labels = pd.Index([str(c) for c in cats.categories], dtype=object)
        owned = pd.DataFrame({"user_idx": hist["user_idx"].to_numpy(),
                              "code": codes[hist["item_idx"].to_numpy()]}).drop_duplicates()
        pairs = _fired_consequents(cat_rules, owned[owned["code"] >= 0], labels)
        n = len(cats.categories) + 1
        mask |= member(_keys(pairs["user_idx"].to_numpy(), pairs["code"].to_numpy(), n),
                       _keys(user_pos, codes[item_pos], n))
    return mask
