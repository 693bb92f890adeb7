"""Churn and purchase-intent classifiers with holdout AUC, and scores for every user."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from recsys.errors import ConfigError
from recsys.mining.config import ClassifierConfig
from recsys.mining.features import DAY, behaviour_features, labels
from recsys.mining.inputs import MiningInputs

TASKS = ("churn", "intent")


@dataclass(frozen=True)
class ClassifierReport:
    """Per task: population, positives, holdout AUC per model and the selected model."""

    summary: dict[str, Any]
    scores: pd.DataFrame  # user_idx, churn_proba, intent_proba


def make_model(name: str, params: Mapping[str, Any], seed: int) -> ClassifierMixin:
    """A fresh estimator for ``name`` (decision_tree, svm, gradient_boosting)."""
    try:
        if name == "decision_tree":
            return DecisionTreeClassifier(random_state=seed, **params)
        if name == "gradient_boosting":
            return GradientBoostingClassifier(random_state=seed, **params)
        if name == "svm":  # probabilities by calibrating the margin (cv folds: calibration_cv)
            svm_params = {k: v for k, v in params.items() if k != "calibration_cv"}
            cv = params.get("calibration_cv")
            calibrated = CalibratedClassifierCV(SVC(random_state=seed, **svm_params),
                                                ensemble=False, **({"cv": cv} if cv else {}))
            return make_pipeline(StandardScaler(), calibrated)
    except TypeError as err:
        raise ConfigError(f"mining.classifiers.models.{name}: {err}") from None
    raise ConfigError(f"mining.classifiers.models: unknown model {name!r}")


def _fit_task(
    x: pd.DataFrame, y: pd.Series, cfg: ClassifierConfig, seed: int
) -> tuple[dict[str, Any], ClassifierMixin | None]:
    """Holdout AUC of every model; the best one refitted on all examples (None if skipped)."""
    counts = y.value_counts()
    info: dict[str, Any] = {"population": len(y), "positives": int(counts.get(1, 0))}
    if len(counts) < 2 or counts.min() < cfg.min_class_count:
        info["skipped"] = f"too few examples of a class ({counts.to_dict()})"
        return info, None
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_size, random_state=seed, stratify=y
    )
    models: dict[str, Any] = {}
    best: tuple[float, str] | None = None
    for name, params in cfg.models.items():
        model = make_model(name, params, seed)
        model.fit(x_tr, y_tr)
        auc = None
        if y_te.nunique() == 2:
            auc = float(roc_auc_score(y_te, model.predict_proba(x_te)[:, 1]))
        models[name] = {"auc": auc, "n_train": len(y_tr), "n_test": len(y_te)}
        if auc is not None and (best is None or auc > best[0]):
            best = (auc, name)
    info["models"] = models
    selected = best[1] if best else next(iter(cfg.models))
    info["selected"] = selected
    final = make_model(selected, cfg.models[selected], seed)
    final.fit(x, y)
    return info, final


def train_classifiers(inputs: MiningInputs, cfg: ClassifierConfig, seed: int) -> ClassifierReport:
    """Train on labels of the last ``window_days`` of history; score everyone as of its end."""
    cutoff = inputs.now - cfg.window_days * DAY
    args = (inputs.interactions, inputs.purchases, inputs.users)
    numeric = inputs.user_numeric
    x_train = behaviour_features(*args, cutoff, cfg.window_days, numeric)
    x_now = behaviour_features(*args, inputs.now + pd.Timedelta(1), cfg.window_days, numeric)
    ys = labels(inputs.interactions, inputs.purchases, cutoff, cfg.window_days)
    summary: dict[str, Any] = {"cutoff": cutoff.isoformat(), "window_days": cfg.window_days,
                               "features": list(x_train.columns)}
    scores = pd.DataFrame({"user_idx": inputs.users["user_idx"].to_numpy()})
    is_buyer = x_now["n_items"].to_numpy() > 0
    for task in TASKS:
        y = ys[task]
        info, model = _fit_task(x_train.loc[y.index], y, cfg, seed)
        summary[task] = info
        proba = np.full(len(scores), np.nan)
        if model is not None:
            proba = model.predict_proba(x_now)[:, 1]
        if task == "churn":
            proba = np.where(is_buyer, proba, np.nan)
        scores[f"{task}_proba"] = proba.astype("float64")
    return ClassifierReport(summary, scores)
