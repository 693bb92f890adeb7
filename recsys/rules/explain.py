"""Per-row explanations as an Arrow struct column (built without a Python loop over rows).

Fields: rules_fired (list<string>), score_before, score_after, contributions {behaviour,
product_image, social_image}, social_image (used / ignored and why), promotion, pricing, channel,
channel_reason, and pushed_by (the features that pushed the item up, when the candidates come
from a learned ranker). ``explanations_as_json`` turns the column into JSON text (for CSV).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

Labels: TypeAlias = np.ndarray | pd.Categorical
SOCIAL_USED = "used"
SOCIAL_IGNORED = "ignored: no social-image consent"


@dataclass(frozen=True)
class ExplainInputs:
    """Row-aligned arrays of the plan."""

    fired: np.ndarray  # int64 bit mask over boosts
    boost_names: Sequence[str]
    extra: dict[str, Labels]  # name -> fired rule name per row ("" / "none": none)
    score_before: np.ndarray
    score_after: np.ndarray
    behaviour: np.ndarray
    image: np.ndarray
    social: np.ndarray
    social_used: np.ndarray
    labels: dict[str, Labels]  # promotion, pricing, channel, channel_reason
    pushed_by: Labels | None = None  # a learned ranker's top feature contributions, as text


def label_codes(values: Labels) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their labels (categoricals as they are, other arrays factorised)."""
    if isinstance(values, pd.Categorical):
        codes = np.asarray(values.codes, dtype=np.int64)
        labels = [str(c) for c in values.categories]
        if (codes < 0).any():
            codes, labels = np.where(codes < 0, len(labels), codes), [*labels, ""]
        return codes, labels
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    return codes.astype(np.int64), [str(u) for u in uniques]


def _dict_strings(values: Labels) -> pa.Array:
    """A string Arrow array built from few distinct values (dictionary-encoded, then decoded)."""
    codes, labels = label_codes(values)
    dictionary = pa.array(labels, type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), dictionary).dictionary_decode()


def fired_lists(inp: ExplainInputs) -> tuple[np.ndarray, list[list[str]]]:
    """Per row: combination code, and per combination the list of fired rule names."""
    key = pd.factorize(inp.fired)[0].astype(np.int64)
    extra_codes = []
    for values in inp.extra.values():
        code, uniq = label_codes(values)
        extra_codes.append((code, uniq))
        key = key * np.int64(len(uniq)) + code
    combo = pd.factorize(key)[0].astype(np.int64)
    _, reps = np.unique(combo, return_index=True)
    lists: list[list[str]] = []
    for row in reps:
        bits = int(inp.fired[row])
        names = [n for b, n in enumerate(inp.boost_names) if bits >> b & 1]
        for code, uniq in extra_codes:
            label = uniq[code[row]]
            if label not in ("", "none"):
                names.append(label)
        lists.append(names)
    return combo, lists


def rules_fired_text(combo: np.ndarray, lists: list[list[str]]) -> pd.Categorical:
    """``;``-joined fired rule names per row."""
    text_code, texts = pd.factorize(pd.Series([";".join(n) for n in lists], dtype=object))
    return pd.Categorical.from_codes(text_code[combo], categories=list(texts))


def _list_array(combo: np.ndarray, lists: list[list[str]]) -> pa.Array:
    names = sorted({n for names in lists for n in names})
    pos = {n: i for i, n in enumerate(names)}
    length = np.array([len(x) for x in lists], dtype=np.int64)
    flat = np.array([pos[n] for x in lists for n in x], dtype=np.int32)
    start = np.r_[0, np.cumsum(length)[:-1]].astype(np.int64)
    row_len = length[combo]
    offsets = np.r_[0, np.cumsum(row_len)].astype(np.int32)
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], row_len)
    take = flat[np.repeat(start[combo], row_len) + within]
    values = pa.DictionaryArray.from_arrays(pa.array(take), pa.array(names, type=pa.string()))
    return pa.ListArray.from_arrays(pa.array(offsets), values.dictionary_decode())


def build_explanations(inp: ExplainInputs) -> tuple[pd.Series, pd.Categorical]:
    """The explanation struct column and the ``;``-joined rules_fired text column."""
    combo, lists = fired_lists(inp)
    contributions = pa.StructArray.from_arrays(
        [pa.array(inp.behaviour, pa.float64()), pa.array(inp.image, pa.float64()),
         pa.array(inp.social, pa.float64())],
        names=["behaviour", "product_image", "social_image"],
    )
    note = np.where(inp.social_used, SOCIAL_USED, SOCIAL_IGNORED).astype(object)
    fields = [
        _list_array(combo, lists), pa.array(inp.score_before, pa.float64()),
        pa.array(inp.score_after, pa.float64()), contributions, _dict_strings(note),
        *(_dict_strings(v) for v in inp.labels.values()),
    ]
    names = ["rules_fired", "score_before", "score_after", "contributions", "social_image",
             *inp.labels]
    if inp.pushed_by is not None:
        fields.append(_dict_strings(inp.pushed_by))
        names.append("pushed_by")
    struct = pa.StructArray.from_arrays(fields, names=names)
    return pd.Series(pd.arrays.ArrowExtensionArray(struct)), rules_fired_text(combo, lists)


def explanations_as_json(column: pd.Series) -> list[str]:
    """JSON text per row of an explanation column (Arrow struct or Python dicts)."""
    if isinstance(column.dtype, pd.ArrowDtype):
        values = column.array._pa_array.to_pylist()
    else:
        values = [v if isinstance(v, dict) else json.loads(v) for v in column]
    return [json.dumps(_plain(v), ensure_ascii=False) for v in values]


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
