"""``recsys-uplift``: the randomised coupon experiment, the two-model uplift estimator, its
comparison with random and churn-rule targeting, and per-user uplift scores for the rules."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
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
    offer_everyone,
    randomised_logs,
    ratio_ci,
    select_learner,
    split_users,
    top_gains,
    uplift_model,
)
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
    test = pd.Series(split_users(x_all.index, cfg.test_share, cfg.seed), index=x_all.index)
    train_log = randomised_logs(plan, world, sim, cost, cfg.replicates, cfg.seed)
    train_log = train_log[~test.reindex(train_log["user_id"]).to_numpy()]
    chosen, validation = select_learner(x_all, train_log, cfg)
    model = uplift_model(cfg.learners[chosen], cfg.seed).fit(
        x_all.loc[train_log["user_id"]].to_numpy(), train_log["converted"].to_numpy(),
        (train_log["group"] == TREATMENT).to_numpy())
    eval_log = randomised_logs(plan, world, sim, cost, cfg.replicates, cfg.seed + 10_000)
    eval_log = eval_log[test.reindex(eval_log["user_id"]).to_numpy()]
    truth = eval_log.drop_duplicates("user_id").set_index("user_id")[["p_treated", "p_control"]]
    test_ids = truth.index
    uplift = pd.Series(model.predict(x_all.loc[test_ids].to_numpy()), index=test_ids)
    churn = users.set_index(users["user_id"].astype(str))[cfg.churn_column].reindex(test_ids)
    budget = int((churn >= cfg.churn_threshold).sum())
    rng = np.random.default_rng(cfg.seed)
    scores = {"uplift_model": uplift, "churn_rule": churn.fillna(churn.min() - 1.0),
              "random": pd.Series(rng.random(len(test_ids)), index=test_ids),
              "oracle": truth["p_treated"] - truth["p_control"]}
    table = evaluate(scores, eval_log, truth, budget, n_boot, level, cfg.seed)
    all_scores = pd.Series(model.predict(x_all.to_numpy()), index=x_all.index)
    n_churn_all = int((users[cfg.churn_column] >= cfg.churn_threshold).sum())
    out = scores_table(users, all_scores, n_churn_all)
    summary = summarise(table, len(train_log), len(eval_log), len(test_ids), budget)
    summary["uplift_vs_churn_rule_ci"] = list(ratio_ci(
        top_gains(uplift, truth, budget), top_gains(scores["churn_rule"], truth, budget),
        n_boot, level, cfg.seed)[1:])
    summary |= {"learner": chosen, "validation_qini_auc": validation}
    with atomic_directory(output_dir) as tmp:
        table.to_csv(tmp / "uplift.csv", index=False)
        (tmp / "uplift.json").write_text(json.dumps(summary, indent=2, default=str))
        (tmp / "uplift.md").write_text(render(table, summary))
        out.to_parquet(tmp / "uplift_scores.parquet", index=False)
        plot_qini(scores, eval_log, tmp / "qini.png")
    return table


def scores_table(users: pd.DataFrame, scores: pd.Series, budget: int) -> pd.DataFrame:
    """user_idx, uplift, uplift_rank (1 = highest) and uplift_targeted (the top ``budget``)."""
    frame = pd.DataFrame({"user_idx": users["user_idx"].to_numpy(np.int64),
                          "uplift": scores.reindex(users["user_id"].astype(str)).to_numpy()})
    frame["uplift_rank"] = frame["uplift"].rank(ascending=False, method="first").astype("int64")
    frame["uplift_targeted"] = frame["uplift_rank"] <= budget
    return frame


def summarise(table: pd.DataFrame, n_train: int, n_eval: int, n_test: int,
              budget: int) -> dict[str, Any]:
    t = table.set_index("method")
    ratio = t.loc["uplift_model", "incremental_per_coupon"] / t.loc["churn_rule",
                                                                    "incremental_per_coupon"]
    return {"train_rows": n_train, "eval_rows": n_eval, "test_users": n_test,
            "coupons": budget, "uplift_vs_churn_rule": float(ratio),
            "methods": table.set_index("method").to_dict(orient="index")}


def render(table: pd.DataFrame, s: dict[str, Any]) -> str:
    return "\n".join([
        "# Uplift targeting\n",
        f"- randomised logs: {s['train_rows']} training rows, {s['eval_rows']} evaluation rows "
        f"({s['test_users']} test users never seen in training)",
        f"- learner: {s['learner']} (validation Qini AUC per learner, training users only: "
        f"{', '.join(f'{k} {v:.4f}' for k, v in s['validation_qini_auc'].items())})",
        f"- budget: {s['coupons']} coupons (as many as the churn rule sends to the test users)",
        f"- incremental conversions per coupon, uplift model / churn rule: "
        f"{s['uplift_vs_churn_rule']:.3f}x (CI {s['uplift_vs_churn_rule_ci'][0]:.3f} .. "
        f"{s['uplift_vs_churn_rule_ci'][1]:.3f}, both top sets resampled)\n",
        markdown_table(table, "{:.4f}"),
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
