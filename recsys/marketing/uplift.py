"""Uplift of a coupon from randomised simulator logs: uplift estimators and their evaluation.

Experiment: every reachable plan user is offered the same coupon, and half of them, drawn at
random per replicate, are held out (no contact). Stacking ``replicates`` independent draws gives
the learner enough conversions; as every replicate has the same features per user, the log is
fitted as weighted (user, arm, converted) rows, which gives the same likelihood. Estimators:
two models (one classifier per arm, uplift = their difference), the transformed outcome, and one
logistic model of both arms with the treatment interacted with the effect modifiers
(``interacted``: P(convert | x, t) = sigmoid(b x + t (c + d x_I)), x_I the columns named by
``interactions``, e.g. channel, preferred channel, hour gap, income band).

Evaluation on users whose outcomes never entered training (cross-fitting: every user is scored by
the model of the folds it is not in), against random targeting and the churn rule's score
(``churn_proba``): Qini AUC and uplift@k on a fresh randomised log (scikit-uplift), and, at the
churn rule's budget (as many coupons as it sends), the true expected incremental conversions per
coupon under the world's model (``p_treated - p_control``), with bootstrap CIs over users.
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
from recsys.marketing.uplift_features import PlanFeatureConfig
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
    folds: int                       # cross-fitting folds of the users
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    learners: dict[str, dict[str, Any]]
    validation_share: float
    churn_column: str
    churn_threshold: float
    seeds: tuple[int, ...]           # one experiment per seed (folds, training and evaluation logs)
    plan: PlanFeatureConfig | None = None
    interactions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"uplift.experiment.folds must be >= 2, got {self.folds}")
        if not self.seeds:
            raise ConfigError("uplift.experiment.seeds must list at least one seed")

    @property
    def seed(self) -> int:
        return self.seeds[0]


def offer_everyone(plan: pd.DataFrame, cfg: UpliftConfig) -> pd.DataFrame:
    """The plan with the experiment's coupon for every user."""
    return plan.assign(promotion=cfg.promotion, promotion_offer=cfg.offer,
                       promotion_depth=cfg.depth, promotion_fixed_cost=cfg.fixed_cost)


def randomised_logs(plan: pd.DataFrame, world: LatentWorld, sim: SimulateConfig,
                    cost: Mapping[str, float], replicates: int, seed: int) -> pd.DataFrame:
    """``replicates`` logs of the plan with half of the users held out at random in each."""
    logs = []
    for r in range(replicates):
        s = dataclasses.replace(sim, control_share=0.5, offer_holdout_share=0.0, seed=seed + r)
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


def fit_weighted(model: Any, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> Any:
    """``model.fit`` with sample weights (routed to the last step of a pipeline)."""
    if weight is None:
        return model.fit(x, y)
    if hasattr(model, "steps"):
        return model.fit(x, y, **{f"{model.steps[-1][0]}__sample_weight": weight})
    return model.fit(x, y, sample_weight=weight)


class TwoModel:
    """Separate classifiers of the treated and the held-out rows; uplift = their difference."""

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.treated = classifier(params, seed)
        self.control = classifier(params, seed)

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray,
            weight: np.ndarray | None = None) -> TwoModel:
        w = np.ones(len(y)) if weight is None else weight
        fit_weighted(self.treated, x[treated], y[treated], w[treated])
        fit_weighted(self.control, x[~treated], y[~treated], w[~treated])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.treated.predict_proba(x)[:, 1] - self.control.predict_proba(x)[:, 1]


class TransformedOutcome:
    """Class transformation (Jaskowski & Jaroszewicz): with treatment drawn with probability 1/2,
    Z = 1 for treated converters and held-out non-converters, and uplift = 2 P(Z = 1 | x) - 1."""

    def __init__(self, params: Mapping[str, Any], seed: int) -> None:
        self.model = classifier(params, seed)

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray,
            weight: np.ndarray | None = None) -> TransformedOutcome:
        fit_weighted(self.model, x, (y.astype(bool) == treated).astype(int), weight)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * self.model.predict_proba(x)[:, 1] - 1.0


class Interacted:
    """One classifier of both arms on [x, t, t * x_I] (x imputed and standardised); uplift =
    P(convert | x, t = 1) - P(convert | x, t = 0). ``interact``: positions of x_I."""

    def __init__(self, params: Mapping[str, Any], seed: int, interact: Sequence[int]) -> None:
        self.model = classifier(params, seed)
        self.prep = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        self.interact = list(interact)

    def _design(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        z = self.prep.transform(x)
        return np.column_stack([z, t, t[:, None] * z[:, self.interact]])

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray,
            weight: np.ndarray | None = None) -> Interacted:
        self.prep.fit(x)
        fit_weighted(self.model, self._design(x, treated.astype(float)), y, weight)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        one, zero = np.ones(len(x)), np.zeros(len(x))
        return (self.model.predict_proba(self._design(x, one))[:, 1]
                - self.model.predict_proba(self._design(x, zero))[:, 1])


UpliftModel = TwoModel | TransformedOutcome | Interacted


def uplift_model(params: Mapping[str, Any], seed: int,
                 interact: Sequence[int] = ()) -> UpliftModel:
    """``approach: two_model`` (default), ``transformed_outcome`` or ``interacted`` (treatment
    interacted with the feature positions ``interact``) with the learner's classifier."""
    approach = params.get("approach", "two_model")
    if approach == "two_model":
        return TwoModel(params, seed)
    if approach == "transformed_outcome":
        return TransformedOutcome(params, seed)
    if approach == "interacted":
        return Interacted(params, seed, interact)
    raise ConfigError(f"uplift learner approach must be two_model, transformed_outcome or "
                      f"interacted, got {approach!r}")


@dataclass(frozen=True)
class ArmRows:
    """A randomised log as weighted rows: per (user, arm), one converted and one not-converted
    row weighted by their counts (zero-weight rows dropped)."""

    user_id: np.ndarray
    treated: np.ndarray
    converted: np.ndarray
    weight: np.ndarray


def arm_rows(log: pd.DataFrame) -> ArmRows:
    """The log's conversions counted per user and arm (see :class:`ArmRows`)."""
    t = (log["group"] != CONTROL).to_numpy()
    g = log.assign(_t=t).groupby([log["user_id"].astype(str), "_t"])["converted"].agg(
        ["sum", "size"]).reset_index()
    users = np.repeat(g["user_id"].to_numpy(), 2)
    weight = np.column_stack([g["sum"], g["size"] - g["sum"]]).ravel().astype(float)
    keep = weight > 0
    return ArmRows(users[keep], np.repeat(g["_t"].to_numpy(), 2)[keep],
                   np.tile([1, 0], len(g))[keep], weight[keep])


def fit_model(params: Mapping[str, Any], seed: int, interact: Sequence[int], x: pd.DataFrame,
              log: pd.DataFrame) -> UpliftModel:
    """An uplift model of ``params`` fitted on a randomised log (features ``x`` by user_id)."""
    rows = arm_rows(log)
    return uplift_model(params, seed, interact).fit(
        x.loc[rows.user_id].to_numpy(), rows.converted, rows.treated, rows.weight)


def qini(log: pd.DataFrame, scores: np.ndarray) -> float:
    """Qini AUC of per-row ``scores`` on a randomised log (scikit-uplift)."""
    from sklift.metrics import qini_auc_score

    t = (log["group"] != CONTROL).to_numpy().astype(int)
    return float(qini_auc_score(log["converted"].to_numpy(), scores, t))


def select_learner(x: pd.DataFrame, log: pd.DataFrame, cfg: UpliftConfig, seed: int,
                   interact: Sequence[int]) -> tuple[str, dict[str, float]]:
    """The learner with the best Qini AUC on the validation users of ``log`` (training users
    only), fitted on the others; returns its name and every learner's validation Qini AUC."""
    users = pd.Index(log["user_id"].unique())
    val = pd.Series(split_users(users, cfg.validation_share, seed + 1), index=users)
    is_val = val.reindex(log["user_id"]).to_numpy()
    fit_rows, val_rows = log[~is_val], log[is_val]
    found = {}
    for name, params in cfg.learners.items():
        model = fit_model(params, seed, interact, x, fit_rows)
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


def _top_means(order: np.ndarray, gain: np.ndarray, counts: np.ndarray,
               budget: np.ndarray) -> np.ndarray:
    """Per resample (rows of ``counts``: how often each user was drawn), the mean gain of the
    first ``budget`` draws taken in ``order`` (users by descending score)."""
    c = counts[:, order]
    cum = np.cumsum(c, axis=1)
    taken = np.clip(np.minimum(cum, budget[:, None]) - (cum - c), 0, None)
    return (taken * gain[order]).sum(axis=1) / np.maximum(budget, 1)


def paired_ratio_ci(a: pd.Series, b: pd.Series, gain: pd.Series, targeted_by_b: pd.Series,
                    n_boot: int, level: float, seed: int) -> tuple[float, float, float]:
    """Mean ``gain`` of the top users by score ``a`` over that of the top users by ``b``, both at
    the budget of ``targeted_by_b`` (how many users rule b targets), with a percentile CI from
    resampling users (the same resample for both methods, its budget recounted)."""
    ids = gain.index
    g = gain.to_numpy(float)
    oa = np.argsort(-a.reindex(ids).to_numpy(float), kind="stable")
    ob = np.argsort(-b.reindex(ids).to_numpy(float), kind="stable")
    t = targeted_by_b.reindex(ids).fillna(False).to_numpy(bool)
    one = np.ones((1, len(ids)))
    k = np.array([t.sum()])
    est = _top_means(oa, g, one, k)[0] / _top_means(ob, g, one, k)[0]
    counts = np.random.default_rng(seed).multinomial(len(ids), np.full(len(ids), 1 / len(ids)),
                                                     size=n_boot).astype(float)
    kb = counts[:, t].sum(axis=1)
    kb_ok = kb > 0                    # a resample without any user of rule b has no ratio
    ratios = (_top_means(oa, g, counts[kb_ok], kb[kb_ok])
              / _top_means(ob, g, counts[kb_ok], kb[kb_ok]))
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(est), float(lo), float(hi)


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
