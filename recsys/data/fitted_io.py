"""Saving and loading the fitted statistics of a processed dataset: ``fitted.json`` (plain JSON),
``fitted.*.npy`` arrays (PCA mean and components, per-item price medians; saved without pickle)
and ``vocabs.json`` (the vocabularies)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recsys.data.fitted import Fence, FittedParams, NumericParams, Pca, PriceImputer, Scaler, TableParams
from recsys.errors import DataError

FITTED = "fitted.json"
VOCABS = "vocabs.json"
FORMAT_VERSION = 1


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _npy(arrays: dict[str, np.ndarray], name: str, array: np.ndarray) -> str:
    arrays[name] = array
    return name


def _numeric_dict(p: NumericParams, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    pca = None
    if p.pca is not None:
        pca = {"inputs": p.pca.inputs,
               "mean": _npy(arrays, f"{prefix}.pca_mean.npy", p.pca.mean),
               "components": _npy(arrays, f"{prefix}.pca_components.npy",
                                  p.pca.components)}
    return {
        "outliers": {"action": p.outlier_action,
                     "fences": {c: {"lo": f.lo, "hi": f.hi} for c, f in p.fences.items()}},
        "fill": p.fill,
        "scalers": {c: {"log1p": s.log1p, "mean": _num(s.mean), "std": s.std, "min": s.min,
                        "range": s.range} for c, s in p.scalers.items()},
        "pca": pca,
    }


def to_files(params: FittedParams) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``fitted.json`` payload and the ``{file name: array}`` saved beside it."""
    arrays: dict[str, np.ndarray] = {}
    tables = {name: {"separators": p.separators,
                     "numeric": _numeric_dict(p.numeric, f"fitted.{name}", arrays)}
              for name, p in params.tables.items()}
    price = params.item_price
    payload = {
        "format_version": FORMAT_VERSION,
        "fitted_on": params.fitted_on,
        "tables": tables,
        "item_price": {"global_median": _num(price.global_median),
                       "item_ids": _npy(arrays, "fitted.items.price_ids.npy",
                                        price.item_ids.astype(str)),
                       "medians": _npy(arrays, "fitted.items.price_medians.npy",
                                       price.medians.astype(np.float64))},
    }
    return payload, arrays


def save_fitted(directory: Path, params: FittedParams) -> None:
    """Write ``fitted.json``, its ``.npy`` arrays and ``vocabs.json`` into ``directory`` (the
    temporary directory of the dataset's atomic write)."""
    payload, arrays = to_files(params)
    for name, array in arrays.items():
        np.save(directory / name, array, allow_pickle=False)
    (directory / FITTED).write_text(json.dumps(payload, indent=2))
    (directory / VOCABS).write_text(json.dumps(params.vocabs()))


def numeric_from_dict(data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> NumericParams:
    """Inverse of the ``numeric`` block of ``fitted.json``; ``arrays`` maps the PCA file names
    (or holds the arrays themselves as lists, as a serving bundle stores them)."""
    def arr(ref: Any) -> np.ndarray:
        return np.asarray(arrays[ref] if isinstance(ref, str) else ref, dtype=np.float64)

    pca = data.get("pca")
    return NumericParams(
        fences={c: Fence(float(f["lo"]), float(f["hi"]))
                for c, f in data["outliers"]["fences"].items()},
        outlier_action=str(data["outliers"]["action"]),
        fill={c: float(v) for c, v in data["fill"].items()},
        scalers={c: Scaler(bool(s["log1p"]), None if s["mean"] is None else float(s["mean"]),
                           float(s["std"]), float(s["min"]), float(s["range"]))
                 for c, s in data["scalers"].items()},
        pca=None if pca is None else Pca(list(pca["inputs"]), arr(pca["mean"]),
                                         arr(pca["components"])),
    )


def numeric_to_dict(p: NumericParams) -> dict[str, Any]:
    """The ``numeric`` block with arrays inlined as lists (exact: JSON keeps float64)."""
    arrays: dict[str, np.ndarray] = {}
    data = _numeric_dict(p, "inline", arrays)
    if data["pca"] is not None:
        data["pca"] = {**data["pca"], "mean": arrays[data["pca"]["mean"]].tolist(),
                       "components": arrays[data["pca"]["components"]].tolist()}
    return data


def load_fitted(directory: Path | str) -> FittedParams:
    """Read the fitted statistics of a processed dataset directory."""
    root = Path(directory)
    path = root / FITTED
    if not path.is_file():
        raise DataError("dataset has no fitted statistics (fitted.json); rerun recsys-data",
                        file=str(root))
    try:
        data = json.loads(path.read_text())
        vocabs: dict[str, list[str]] = json.loads((root / VOCABS).read_text())
        refs = [t["numeric"]["pca"] for t in data["tables"].values() if t["numeric"]["pca"]]
        names = [r[k] for r in refs for k in ("mean", "components")]
        names += [data["item_price"]["item_ids"], data["item_price"]["medians"]]
        arrays = {n: np.load(root / n, allow_pickle=False) for n in names}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"unreadable fitted statistics ({err})", file=str(path)) from None
    tables: dict[str, TableParams] = {}
    for name, t in data["tables"].items():
        seps = dict(t["separators"])
        own = {k.split(".", 1)[1]: v for k, v in vocabs.items() if k.split(".", 1)[0] == name}
        tables[name] = TableParams(
            categorical={c: v for c, v in own.items() if c not in seps},
            multi_hot={c: v for c, v in own.items() if c in seps},
            separators=seps, numeric=numeric_from_dict(t["numeric"], arrays))
    price = data["item_price"]
    imputer = PriceImputer(arrays[price["item_ids"]], arrays[price["medians"]],
                           price["global_median"])
    return FittedParams(tables, imputer, dict(data.get("fitted_on", {})))
