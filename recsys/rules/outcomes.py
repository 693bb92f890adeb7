"""Campaign outcome logs: reading and validation (unknown ids, bad or negative counts)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import RuleError
from recsys.rules.config import NO_PROMOTION, RulesConfig

REQUIRED = ("campaign_id", "channel", "segment", "promotion", "sent", "opened", "converted",
            "revenue", "cost")
COUNTS = ("sent", "opened", "converted")
AMOUNTS = ("revenue", "cost")
GROUPS = ("treatment", "control")  # optional ``group`` column: control rows were not contacted
FLAGS = ("offer_sent", "preferred")  # optional 0/1 columns: offer delivered, preferred channel used


def read_outcomes(path: Path | str) -> pd.DataFrame:
    """An outcome log from CSV or Parquet (ids read as text)."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"campaign_id": str, "user_id": str})
    except FileNotFoundError:
        raise RuleError("outcome log not found", file=str(path)) from None
    except Exception as err:  # parser / pyarrow errors come in several types
        raise RuleError(f"unreadable outcome log ({err})", file=str(path)) from None


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _check_ids(log: pd.DataFrame, column: str, known: Collection[str], what: str,
               source: str | None) -> None:
    values = log[column].astype("object")
    row = _first_bad(~values.isin(list(known)).to_numpy())
    if row is not None:
        raise RuleError(f"unknown {what} {values.iloc[row]!r}", file=source, row=row + 1,
                        column=column)


def validate_outcomes(
    log: pd.DataFrame,
    rules: RulesConfig,
    source: str | None,
    plan: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Checked copy of ``log`` with numeric counts; errors name the 1-based data row (header not
    counted). Channels and promotions must exist in ``rules``; campaign ids, user ids and
    segments must occur in ``plan`` when it is given."""
    for col in REQUIRED:
        if col not in log.columns:
            raise RuleError("outcome log lacks a required column", file=source, column=col)
    out = log.reset_index(drop=True).copy()
    for col in (*COUNTS, *AMOUNTS):
        values = pd.to_numeric(out[col], errors="coerce")
        row = _first_bad(values.isna().to_numpy())
        if row is not None:
            raise RuleError(f"not a number: {out[col].iloc[row]!r}", file=source, row=row + 1,
                            column=col)
        row = _first_bad((values < 0).to_numpy())
        if row is not None:
            raise RuleError(f"negative value {values.iloc[row]}", file=source, row=row + 1,
                            column=col)
        if col in COUNTS:
            row = _first_bad((values != np.floor(values)).to_numpy())
            if row is not None:
                raise RuleError(f"count must be a whole number, got {values.iloc[row]}",
                                file=source, row=row + 1, column=col)
        out[col] = values.astype("int64" if col in COUNTS else "float64")
    for col in FLAGS:
        if col in out.columns:
            values = pd.to_numeric(out[col], errors="coerce")
            row = _first_bad(~values.isin([0, 1]).to_numpy())
            if row is not None:
                raise RuleError(f"must be 0 or 1, got {out[col].iloc[row]!r}", file=source,
                                row=row + 1, column=col)
            out[col] = values.astype("int64")
    if "offer_sent" in out.columns:
        row = _first_bad((out["offer_sent"] > out["sent"]).to_numpy())
        if row is not None:
            raise RuleError("offer_sent exceeds sent", file=source, row=row + 1,
                            column="offer_sent")
    control = np.zeros(len(out), dtype=bool)
    if "group" in out.columns:
        _check_ids(out, "group", GROUPS, "group", source)
        control = (out["group"] == "control").to_numpy()
        row = _first_bad(control & (out["sent"] > 0).to_numpy())
        if row is not None:
            raise RuleError("a control row must have sent 0", file=source, row=row + 1,
                            column="sent")
    for col in ("opened", "converted"):
        # a control user was not contacted but may still buy (its conversions are organic)
        exceeds = (out[col] > out["sent"]).to_numpy() & ~(control & (col == "converted"))
        row = _first_bad(exceeds)
        if row is not None:
            raise RuleError(f"{col} ({out[col].iloc[row]}) exceeds sent ({out['sent'].iloc[row]})",
                            file=source, row=row + 1, column=col)
    _check_ids(out, "channel", rules.channels, "channel", source)
    _check_ids(out, "promotion", [p.name for p in rules.promotions] + [NO_PROMOTION],
               "promotion", source)
    if plan is not None:
        _check_ids(out, "campaign_id", set(plan["campaign_id"].astype(str)), "campaign id", source)
        if "segment" in plan.columns:
            _check_ids(out, "segment", set(plan["segment"].dropna().astype(str)), "segment",
                       source)
        if "user_id" in out.columns:
            known = set(plan["user_id"].astype(str))
            ids = out["user_id"].astype("object")
            row = _first_bad((ids.notna() & ~ids.astype(str).isin(known)).to_numpy())
            if row is not None:
                raise RuleError(f"unknown user id {ids.iloc[row]!r}", file=source, row=row + 1,
                                column="user_id")
    return out
