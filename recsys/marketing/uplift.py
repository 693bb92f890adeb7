"""Uplift of a coupon from randomised simulator logs: a two-model estimator and its evaluation.

Experiment: every reachable plan user is offered the same coupon, and half of them, drawn at
random per replicate, are held out (no contact). Stacking ``replicates`` independent draws gives
the learner enough conversions. Two classifiers (treated / held-out rows) estimate
P(convert | x, coupon) and P(convert | x, none); the uplift score is their difference.

Evaluation on users held out from training, against random targeting and the churn rule's score
(``churn_proba``): Qini AUC and uplift@k on a fresh randomised log (scikit-uplift), and, at the
churn rule's budget (as many coupons as it sends), the true expected incremental conversions per
coupon under the world's model (``p_treated - p_control``), with a bootstrap CI over users.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recsys.errors import ConfigError, DataError
from recsys.marketing.bootstrap import bootstrap_ci
from recsys.marketing.simulate import CONTROL, SimulateConfig, simulate_plan
from recsys.marketing.world import LatentWorld

METHODS = ("uplift_model", "churn_rule", "random", "oracle")  # oracle: the world's true uplift


@dataclass(frozen=True)
class UpliftConfig:
    """uplift.yaml ``experiment`` and ``model``."""

    promotion: str
    offer: str
    depth: float
    fixed_cost: float
    replicates: int
    test_share: float
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    learners: dict[str, dict[str, Any]]
    validation_share: float
    churn_column: str
    churn_threshold: float
    seed: int


def offer_everyone(plan: pd.DataFrame, cfg: UpliftConfig) -> pd.DataFrame:
    """The plan with the experiment's coupon for every user."""
    return plan.assign(promotion=cfg.promotion, promotion_offer=cfg.offer,
                       promotion_depth=cfg.depth, promotion_fixed_cost=cfg.fixed_cost)


def randomised_logs(plan: pd.DataFrame, world: LatentWorld, sim: SimulateConfig,
                    cost: Mapping[str, float], replicates: int, seed: int) -> pd.DataFrame:
    """``replicates`` logs of the plan with half of the users held out at random in each."""
    logs = []
    for r in range(replicates):
        s = dataclasses.replace(sim, control_share=0.5, seed=seed + r)
        logs.append(simulate_plan(plan, world, s, cost).assign(replicate=r))
    return pd.concat(logs, ignore_index=True)


def features(users: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str],
             source: str) -> pd.DataFrame:
    """Model inputs per user_id: numeric columns as they are (NaN allowed) and one-hot
    categories; a configured column missing from the user table is a DataError."""
    for col in (*numeric, *categorical):
        if col not in users.columns:
            raise DataError("user table lacks an uplift feature column", file=source, column=col)
    num = users[list(numeric)].apply(pd.to_numeric, errors="coerce").astype(float)
    cats = pd.get_dummies(users[list(categorical)].astype(str), dtype=float)
    return pd.concat([num, cats], axis=1).set_index(users["user_id"].astype(str))


def classifier(params: Mapping[str, Any], seed: int) -> Any:
    """``kind: gradient_boosting`` (HistGradientBoostingClassifier) or ``logistic`` (imputed,
    standardised LogisticRegression); the other keys are the estimator's parameters."""
    p = {k: v for k, v in params.items() if k != "approach"}
    kind = p.pop("kind", "gradient_boosting")
    if kind == "gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed, **p)
    if kind == "logistic":
        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             LogisticRegression(random_state=seed, **p))
    raise ConfigError(f"uplift.model.kind must be gradient_boosting or logistic, got {kind!r}")


class TwoModel:
    """Separate classifiers of the treated and the held-out rows; uplift = their difference."""

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.treated = classifier(params, seed)
        self.control = classifier(params, seed)

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray) -> TwoModel:
        self.treated.fit(x[treated], y[treated])
        self.control.fit(x[~treated], y[~treated])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.treated.predict_proba(x)[:, 1] - self.control.predict_proba(x)[:, 1]


class TransformedOutcome:
    """Class transformation (Jaskowski & Jaroszewicz): with treatment drawn with probability 1/2,
    Z = 1 for treated converters and held-out non-converters, and uplift = 2 P(Z = 1 | x) - 1."""

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.model = classifier(params, seed)

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray) -> TransformedOutcome:
        self.model.fit(x, (y.astype(bool) == treated).astype(int))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self.model.predict_proba(x)[:, 1] - 1.0


def uplift_model(params: Mapping[str, Any], seed: int) -> TwoModel | TransformedOutcome:
    """``approach: two_model`` (default) or ``transformed_outcome`` with the learner's classifier."""
    approach = params.get("approach", "two_model")
    if approach == "two_model":
        return TwoModel(params, seed)
    if approach == "transformed_outcome":
        return TransformedOutcome(params, seed)
    raise ConfigError(f"uplift learner approach must be two_model or transformed_outcome, "
                      f"got {approach!r}")


def qini(log: pd.DataFrame, scores: np.ndarray) -> float:
    """Qini AUC of per-row ``scores`` on a randomised log (scikit-uplift)."""
    from sklift.metrics import qini_auc_score

    t = (log["group"] != CONTROL).to_numpy().astype(int)
    return float(qini_auc_score(log["converted"].to_numpy(), scores, t))


def select_learner(x: pd.DataFrame, log: pd.DataFrame, cfg: UpliftConfig
                   ) -> tuple[str, dict[str, float]]:
    """The learner with the best Qini AUC on the validation users of ``log`` (training users
    only), fitted on the others; returns its name and every learner's validation Qini AUC."""
    users = pd.Index(log["user_id"].unique())
    val = pd.Series(split_users(users, cfg.validation_share, cfg.seed + 1), index=users)
    is_val = val.reindex(log["user_id"]).to_numpy()
    fit_rows, val_rows = log[~is_val], log[is_val]
    found = {}
    for name, params in cfg.learners.items():
        model = uplift_model(params, cfg.seed).fit(
            x.loc[fit_rows["user_id"]].to_numpy(), fit_rows["converted"].to_numpy(),
            (fit_rows["group"] != CONTROL).to_numpy())
        found[name] = qini(val_rows, model.predict(x.loc[val_rows["user_id"]].to_numpy()))
    return max(found, key=lambda k: found[k]), found


def split_users(user_ids: pd.Index, test_share: float, seed: int) -> np.ndarray:
    """Boolean mask of test users (random, seeded)."""
    return np.random.default_rng(seed).random(len(user_ids)) < test_share


def top_gains(scores: pd.Series, truth: pd.DataFrame, k: int) -> np.ndarray:
    """True uplift (p_treated - p_control) of the top-``k`` users by ``scores``."""
    top = scores.sort_values(ascending=False, kind="stable").index[:k]
    return (truth.loc[top, "p_treated"] - truth.loc[top, "p_control"]).to_numpy()


def incremental_at_budget(scores: pd.Series, truth: pd.DataFrame, k: int, n_boot: int,
                          level: float, seed: int) -> tuple[float, float, float]:
    """Mean true uplift of the top-``k`` users by ``scores``, with a bootstrap CI."""
    gain = top_gains(scores, truth, k)
    if not len(gain):
        return float("nan"), float("nan"), float("nan")
    return bootstrap_ci({"g": (gain, np.ones(len(gain)))}, n_boot, level,
                        np.random.default_rng(seed))["g"]


def ratio_ci(a: np.ndarray, b: np.ndarray, n_boot: int, level: float,
             seed: int) -> tuple[float, float, float]:
    """mean(a) / mean(b) with a percentile CI from resampling both groups independently."""
    rng = np.random.default_rng(seed)
    ra = rng.choice(a, size=(n_boot, len(a))).mean(axis=1)
    rb = rng.choice(b, size=(n_boot, len(b))).mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ra / rb, [alpha, 1.0 - alpha])
    return float(a.mean() / b.mean()), float(lo), float(hi)


def evaluate(scores: Mapping[str, pd.Series], eval_log: pd.DataFrame, truth: pd.DataFrame,
             budget: int, n_boot: int, level: float, seed: int) -> pd.DataFrame:
    """One row per method: Qini AUC and uplift@k on ``eval_log``, true incremental conversions
    per coupon at ``budget`` coupons (CI), total incremental conversions."""
    from sklift.metrics import qini_auc_score, uplift_at_k

    y = eval_log["converted"].to_numpy()
    t = (eval_log["group"] != CONTROL).to_numpy().astype(int)
    rows = []
    k_share = budget / max(len(truth), 1)
    for name, s in scores.items():
        u = s.reindex(eval_log["user_id"].astype(str)).to_numpy()
        est, lo, hi = incremental_at_budget(s, truth, budget, n_boot, level, seed)
        rows.append({
            "method": name, "coupons": budget, "qini_auc": float(qini_auc_score(y, u, t)),
            "uplift_at_k": float(uplift_at_k(y, u, t, strategy="overall", k=max(k_share, 1e-3))),
            "incremental_per_coupon": est, "ci_low": lo, "ci_high": hi,
            "incremental_conversions": est * budget,
        })
    return pd.DataFrame(rows)
