"""``recsys-uplift``: the randomised coupon experiment, the two-model uplift estimator, its
comparison with random and churn-rule targeting, and per-user uplift scores for the rules."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.atomic import atomic_directory
from recsys.marketing.campaign import BacktestConfig, CampaignInputs, plan_campaign
from recsys.marketing.simulate import TREATMENT, SimulateConfig
from recsys.marketing.uplift import (
    UpliftConfig,
    evaluate,
    features,
    fit_model,
    offer_everyone,
    paired_ratio_ci,
    randomised_logs,
    select_learner,
)
from recsys.marketing.uplift_features import interaction_columns, plan_features
from recsys.marketing.world import LatentWorld
from recsys.mining.report import markdown_table
from recsys.rules.config import NO_CHANNEL, RulesConfig


def run_uplift(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig, world: LatentWorld,
               sim: SimulateConfig, cfg: UpliftConfig, n_boot: int, level: float,
               output_dir: Path) -> pd.DataFrame:
    """Run the experiment and write uplift.md / .csv / .json, qini.png and uplift_scores.parquet."""
    with warnings.catch_warnings():  # scikit-uplift calls a helper scikit-learn deprecates
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        return _run(inp, rules, bt, world, sim, cfg, n_boot, level, output_dir)


def _run(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig, world: LatentWorld,
         sim: SimulateConfig, cfg: UpliftConfig, n_boot: int, level: float,
         output_dir: Path) -> pd.DataFrame:
    pc = plan_campaign(inp, rules, bt)
    plan = offer_everyone(pc.plan, cfg)
    cost: Mapping[str, float] = {c: o.cost for c, o in rules.channels.items()}
    reach = plan.loc[plan["channel"].astype(str) != NO_CHANNEL].drop_duplicates("user_id")
    users = pc.context.users.set_index("user_idx").loc[reach["user_idx"]].reset_index()
    users["channel"] = reach["channel"].astype(str).to_numpy()  # the planned channel
    x_all = features(users, cfg.numeric, cfg.categorical, "users + mining outputs")
    if cfg.plan is not None:
        x_all = x_all.join(plan_features(plan, users, pc.context.items, pc.window.history,
                                         cfg.plan))
    interact = interaction_columns(list(x_all.columns), cfg.interactions)
    churn = users.set_index(users["user_id"].astype(str))[cfg.churn_column].reindex(x_all.index)
    targeted = (churn >= cfg.churn_threshold).fillna(False)
    runs = [_experiment(plan, world, sim, cost, cfg, x_all, interact, churn, targeted, seed,
                        n_boot, level) for seed in cfg.seeds]
    first = runs[0]
    table = first.table
    ratios = pd.DataFrame([{"seed": r.seed, "ratio": r.ratio[0], "ci_low": r.ratio[1],
                            "ci_high": r.ratio[2], "learners": ", ".join(r.chosen),
                            **{f"{m}_per_coupon": v for m, v in r.table.set_index("method")[
                                "incremental_per_coupon"].items()}} for r in runs])
    out = scores_table(users, first.scores, int(targeted.sum()))
    summary = summarise(table, first.n_train, len(first.eval_log), len(x_all), int(targeted.sum()))
    summary |= {"uplift_vs_churn_rule": first.ratio[0],
                "uplift_vs_churn_rule_ci": list(first.ratio[1:]),
                "seeds": ratios.to_dict(orient="records"),
                "mean_ratio_over_seeds": float(ratios["ratio"].mean()),
                "learner": first.chosen[0], "learners_per_fold": first.chosen,
                "validation_qini_auc": first.validation, "features": list(x_all.columns),
                "interacted": [x_all.columns[j] for j in interact]}
    with atomic_directory(output_dir) as tmp:
        table.to_csv(tmp / "uplift.csv", index=False)
        ratios.to_csv(tmp / "uplift_seeds.csv", index=False)
        (tmp / "uplift.json").write_text(json.dumps(summary, indent=2, default=str))
        (tmp / "uplift.md").write_text(render(table, summary, ratios))
        out.to_parquet(tmp / "uplift_scores.parquet", index=False)
        plot_qini(first.all_scores, first.eval_log, tmp / "qini.png")
    return table


@dataclass
class Experiment:
    """One seed's cross-fitted experiment."""

    seed: int
    table: pd.DataFrame
    ratio: tuple[float, float, float]
    scores: pd.Series                    # out-of-fold uplift per user_id
    all_scores: dict[str, pd.Series]
    eval_log: pd.DataFrame
    chosen: list[str]
    validation: dict[str, float]
    n_train: int


def _experiment(plan: pd.DataFrame, world: LatentWorld, sim: SimulateConfig,
                cost: Mapping[str, float], cfg: UpliftConfig, x_all: pd.DataFrame,
                interact: list[int], churn: pd.Series, targeted: pd.Series, seed: int,
                n_boot: int, level: float) -> Experiment:
    """Folds of users drawn with ``seed``; each fold scored by the learner chosen and fitted on
    the training log of the other folds; evaluation on a fresh log of every user."""
    fold = pd.Series(np.random.default_rng(seed).integers(0, cfg.folds, len(x_all)),
                     index=x_all.index)
    train_log = randomised_logs(plan, world, sim, cost, cfg.replicates, seed)
    log_fold = fold.reindex(train_log["user_id"].astype(str)).to_numpy()
    uplift = pd.Series(np.nan, index=x_all.index)
    chosen: list[str] = []
    validation: dict[str, float] = {}
    for f in range(cfg.folds):
        fit_log = train_log[log_fold != f]
        name, found = select_learner(x_all, fit_log, cfg, seed + f, interact)
        chosen.append(name)
        validation = validation or found
        model = fit_model(cfg.learners[name], seed, interact, x_all, fit_log)
        ids = fold.index[fold.to_numpy() == f]
        uplift[ids] = model.predict(x_all.loc[ids].to_numpy())
    eval_log = randomised_logs(plan, world, sim, cost, cfg.replicates, seed + 10_000)
    truth = eval_log.drop_duplicates("user_id").set_index("user_id")[["p_treated", "p_control"]]
    truth = truth.reindex(x_all.index)
    rng = np.random.default_rng(seed)
    scores = {"uplift_model": uplift, "churn_rule": churn.fillna(churn.min() - 1.0),
              "random": pd.Series(rng.random(len(x_all)), index=x_all.index),
              "oracle": truth["p_treated"] - truth["p_control"]}
    budget = int(targeted.sum())
    table = evaluate(scores, eval_log, truth, budget, n_boot, level, seed)
    ratio = paired_ratio_ci(uplift, scores["churn_rule"], scores["oracle"], targeted, n_boot,
                            level, seed)
    return Experiment(seed, table, ratio, uplift, scores, eval_log, chosen, validation,
                      len(train_log))


def scores_table(users: pd.DataFrame, scores: pd.Series, budget: int) -> pd.DataFrame:
    """user_idx, uplift, uplift_rank (1 = highest) and uplift_targeted (the top ``budget``)."""
    frame = pd.DataFrame({"user_idx": users["user_idx"].to_numpy(np.int64),
                          "uplift": scores.reindex(users["user_id"].astype(str)).to_numpy()})
    frame["uplift_rank"] = frame["uplift"].rank(ascending=False, method="first").astype("int64")
    frame["uplift_targeted"] = frame["uplift_rank"] <= budget
    return frame


def summarise(table: pd.DataFrame, n_train: int, n_eval: int, n_test: int,
              budget: int) -> dict[str, Any]:
    """Sizes, the model / churn-rule ratio and each method's row."""
    t = table.set_index("method")
    ratio = t.loc["uplift_model", "incremental_per_coupon"] / t.loc["churn_rule",
                                                                    "incremental_per_coupon"]
    return {"train_rows": n_train, "eval_rows": n_eval, "test_users": n_test,
            "coupons": budget, "uplift_vs_churn_rule": float(ratio),
            "methods": table.set_index("method").to_dict(orient="index")}


def render(table: pd.DataFrame, s: dict[str, Any], seeds: pd.DataFrame) -> str:
    """uplift.md: setup, the first seed's comparison and the ratio per seed."""
    return "\n".join([
        "# Uplift targeting\n",
        f"- randomised logs: {s['train_rows']} training rows, {s['eval_rows']} evaluation rows; "
        f"{s['test_users']} users, each scored out of fold (its outcomes never trained its model)",
        f"- learners per fold (chosen by validation Qini AUC on training users only): "
        f"{', '.join(s['learners_per_fold'])}; fold 1: "
        f"{', '.join(f'{k} {v:.4f}' for k, v in s['validation_qini_auc'].items())}",
        f"- treatment interacted with: {', '.join(s['interacted']) or 'nothing'}",
        f"- budget: {s['coupons']} coupons (as many as the churn rule sends)",
        f"- incremental conversions per coupon, uplift model / churn rule (seed "
        f"{s['seeds'][0]['seed']}): {s['uplift_vs_churn_rule']:.3f}x (CI "
        f"{s['uplift_vs_churn_rule_ci'][0]:.3f} .. {s['uplift_vs_churn_rule_ci'][1]:.3f}, users "
        f"resampled, both rules on the same resample); mean over {len(seeds)} seeds "
        f"{s['mean_ratio_over_seeds']:.3f}x\n",
        markdown_table(table, "{:.4f}"),
        "\n## Per seed (folds, training and evaluation logs drawn afresh)\n",
        markdown_table(seeds, "{:.4f}"),
        "\n![Qini curves](qini.png)\n",
    ])


def plot_qini(scores: Mapping[str, pd.Series], log: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklift.metrics import qini_curve

    y = log["converted"].to_numpy()
    t = (log["group"] == TREATMENT).to_numpy().astype(int)
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, s in scores.items():
        xs, ys = qini_curve(y, s.reindex(log["user_id"].astype(str)).to_numpy(), t)
        ax.plot(xs, ys, label=name)
    ax.set_xlabel("users targeted")
    ax.set_ylabel("incremental conversions (Qini)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
