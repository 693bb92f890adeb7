"""Calibration report of the purchase probability: Brier score, ECE and the reliability table
equal a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.evaluation.ranked import reliability


def test_reliability_table_brier_and_ece_by_hand() -> None:
    p = np.array([0.1, 0.1, 0.2, 0.2, 0.8, 0.8, 0.9, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    got = reliability(y, p, bins=2)
    assert got["pairs"] == 8 and got["positive_rate"] == pytest.approx(0.5)
    assert got["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert got["brier_base_rate"] == pytest.approx(0.25)
    low, high = got["table"]
    assert (low["mean_predicted"], low["observed"], low["pairs"]) == pytest.approx((0.15, 0.25, 4))
    assert (high["mean_predicted"], high["observed"], high["pairs"]) == pytest.approx((0.85, 0.75, 4))
    assert got["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.1)


def test_a_perfectly_calibrated_constant_has_zero_ece() -> None:
    y = np.array([1, 0, 0, 0])
    got = reliability(y, np.full(4, 0.25), bins=10)
    assert got["ece"] == pytest.approx(0.0) and len(got["table"]) == 1
    assert got["brier"] == pytest.approx(got["brier_base_rate"])
