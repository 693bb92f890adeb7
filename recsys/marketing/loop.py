"""The closed loop: campaign -> simulated responses -> adjusted rules -> next campaign, N rounds.

Round r plans at ``cutoff + r * round_days`` with the rules adjusted after round r - 1 and the
messages of earlier rounds as contact history (frequency cap); the world answers with seed
``seed + r``. The history the rules see stays the data's history before the cut-off, so rounds
differ only by the rules, the contact history and the draws. Round 1 is the default campaign;
from ``challengers.first_round`` on, random shares of the users get challenger rules
(``recsys.marketing.challengers``) and the winners join the champion rules.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recsys.data import load_dataset
from recsys.data.atomic import atomic_directory
from recsys.marketing.bootstrap import bootstrap_ci
from recsys.marketing.campaign import BacktestConfig, CampaignInputs, PlannedCampaign, plan_campaign
from recsys.marketing.challengers import (
    CHAMPION,
    ChallengeConfig,
    Move,
    apply_move,
    check_moves,
    choose_moves,
    compare_arms,
    draw_arms,
    no_challengers,
    pooled,
    scale_budgets,
)
from recsys.marketing.constraints import CHECKS, violations
from recsys.marketing.simulate import SimulateConfig, simulate_plan
from recsys.marketing.window import make_window
from recsys.marketing.world import LatentWorld
from recsys.mining.report import markdown_table
from recsys.rules.adjust import AdjustSettings, adjust_rules
from recsys.rules.changelog import render_changelog
from recsys.rules.config import RulesConfig, parse_rules
from recsys.rules.outcomes import validate_outcomes
from recsys.rules.plan_io import write_plan_parquet

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class LoopConfig:
    rounds: int
    round_days: float
    n_boot: int
    ci_level: float
    challengers: ChallengeConfig = field(default_factory=no_challengers)


def round_kpis(log: pd.DataFrame, n_boot: int, level: float, seed: int) -> dict[str, Any]:
    """Headline figures of one simulated round (contacted = treatment users)."""
    t = log[log["group"] == "treatment"]
    c = log[log["group"] == "control"]
    n = len(t)
    profit = (t["revenue"] - t["cost"]).to_numpy(float)
    expected = (t["expected_revenue"] - t["expected_cost"]).to_numpy(float)
    cis = bootstrap_ci({"profit": (profit, np.ones(n)), "expected": (expected, np.ones(n))},
                       n_boot, level, np.random.default_rng(seed)) if n else {}
    ci = cis.get("profit", (np.nan,) * 3)
    eci = cis.get("expected", (np.nan,) * 3)
    conv_c = float(c["converted"].mean()) if len(c) else float("nan")
    return {
        "contacted": n, "control": len(c),
        "offers": int((t["promotion"] != "none").sum()),
        "open_rate": float(t["opened"].mean()) if n else float("nan"),
        "conversion_rate": float(t["converted"].mean()) if n else float("nan"),
        "control_conversion_rate": conv_c,
        "revenue": float(t["revenue"].sum()), "promotion_cost": float(t["promotion_cost"].sum()),
        "contact_cost": float(t["contact_cost"].sum()), "cost": float(t["cost"].sum()),
        "profit_per_contacted": ci[0], "profit_ci_low": ci[1], "profit_ci_high": ci[2],
        "expected_profit_per_contacted": eci[0], "expected_ci_low": eci[1],
        "expected_ci_high": eci[2],
        "expected_incremental_conversions": float((t["p_treated"] - t["p_control"]).sum()),
        "expected_incremental_profit_per_contacted": float(
            (t["expected_revenue"] - t["expected_cost"] - t["expected_revenue_control"]).mean())
        if n else float("nan"),
        # what contacting them added over not contacting them, summed (revenue - cost)
        "expected_incremental_profit": float(
            (t["expected_revenue"] - t["expected_cost"] - t["expected_revenue_control"]).sum()),
        "offer_holdout": int(((t["promotion"] != "none") & (t["offer_sent"] == 0)).sum())
        if "offer_sent" in t.columns else 0,
    }


def plan_arms(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig, moves: list[Move],
              share: float, rng: np.random.Generator) -> tuple[PlannedCampaign, pd.DataFrame]:
    """The champion's planned campaign over all users (candidates, context) and the round's plan:
    each user planned by the rules of a random arm (column ``arm``), every arm within its share
    of the budgets."""
    full = plan_campaign(inp, rules, bt)
    if not moves:
        return full, full.plan.assign(arm=CHAMPION)
    raws = {CHAMPION: rules.raw}
    for m in moves:
        raw = apply_move(rules.raw, m)
        if raw is not None:
            raws[m.name] = raw
    users = np.unique(full.candidates["user_idx"].to_numpy(np.int64))
    arm = draw_arms(users, list(raws), share, rng)
    plans = []
    for name, raw in raws.items():
        part = (1.0 - (len(raws) - 1) * share) if name == CHAMPION else share
        mine = full.candidates[full.candidates["user_idx"].isin(arm.index[arm == name])]
        arm_rules = parse_rules(scale_budgets(raw, part), rules.source)
        plans.append(plan_campaign(inp, arm_rules, bt, mine).plan.assign(arm=name))
    return full, pd.concat(plans, ignore_index=True)


def adopt(rules: RulesConfig, tests: pd.DataFrame, moves: list[Move], z: float
          ) -> tuple[RulesConfig, list[str]]:
    """The champion rules with the moves tested this round whose pooled difference (all their
    tests) exceeds ``z`` pooled standard errors, best first; a move editing a path an adopted one
    already edited is left out."""
    by_name = {m.name: m for m in moves}
    raw, done, paths = rules.raw, [], set[str]()
    ranked = sorted(((pooled(tests, m.name), m.name) for m in moves), reverse=True)
    for (mean, se), name in ranked:
        move = by_name[name]
        if not np.isfinite(mean) or mean <= z * se or paths & {p for p, _ in move.edits}:
            continue
        new = apply_move(raw, move)
        if new is not None:
            raw, paths = new, paths | {p for p, _ in move.edits}
            done.append(name)
    return (parse_rules(raw, rules.source) if done else rules), done


def run_loop(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig, world: LatentWorld,
             sim: SimulateConfig, adjust: AdjustSettings, loop: LoopConfig,
             output_dir: Path) -> pd.DataFrame:
    """Run ``loop.rounds`` rounds; write round_<r>/ (plan, outcomes, rules, changelog, arm
    tests), loop.csv, challengers.csv, loop.md, loop.png under ``output_dir`` atomically; return
    the per-round table."""
    check_moves(loop.challengers, rules.raw)
    contacts = pd.DataFrame({"user_idx": pd.Series(dtype="int64"),
                             "sent_at": pd.Series(dtype="datetime64[ns]")})
    rows: list[dict[str, Any]] = []
    earlier: list[pd.DataFrame] = []  # checked champion logs of the rounds before (routes)
    tests = pd.DataFrame()
    closed: set[str] = set()   # adopted moves
    rng = np.random.default_rng([sim.seed, 7])
    with atomic_directory(output_dir) as tmp:
        start = inp.now if inp.now is not None else make_window(
            load_dataset(inp.dataset_dir), bt.cutoff, bt.holdout_split, bt.horizon_days).cutoff
        for r in range(loop.rounds):
            now = start + r * loop.round_days * DAY
            moves = (choose_moves(loop.challengers, rules.raw, tests, closed, rng)
                     if r + 1 >= loop.challengers.first_round else [])
            pc, plan = plan_arms(dataclasses.replace(inp, campaign_id=f"round_{r + 1}", now=now,
                                                     contacts=contacts), rules, bt, moves,
                                 loop.challengers.share, np.random.default_rng([sim.seed, r, 7]))
            cost = {c: o.cost for c, o in rules.channels.items()}
            log = simulate_plan(plan, world, dataclasses.replace(sim, seed=sim.seed + r), cost,
                                f"round_{r + 1}/plan.parquet")
            broken = violations(plan, pc.context, rules, log, contacts)
            checked = validate_outcomes(log, rules, f"round_{r + 1}/outcomes.csv", plan)
            arm = plan.drop_duplicates("user_id").set_index("user_id")["arm"]
            log["arm"] = arm.reindex(log["user_id"]).to_numpy()
            mine = (checked[log["arm"].to_numpy() == CHAMPION]).reset_index(drop=True)
            adj = adjust_rules(rules, mine, adjust,
                               pd.concat(earlier, ignore_index=True) if earlier else None)
            earlier.append(mine)
            test = compare_arms(log, loop.challengers.z).assign(round=r + 1)
            tests = pd.concat([tests, test], ignore_index=True) if len(test) else tests
            new_rules, adopted = adopt(adj.rules, tests, moves, loop.challengers.z)
            closed |= set(adopted)
            if len(test):
                now_pooled = [pooled(tests, str(m)) for m in test["move"]]
                mask = tests["round"] == r + 1
                tests.loc[mask, "pooled_difference"] = [p[0] for p in now_pooled]
                tests.loc[mask, "pooled_se"] = [p[1] for p in now_pooled]
                tests.loc[mask, "adopted"] = test["move"].isin(adopted).to_numpy()
                test = tests[mask]
            champion = log[(log["arm"] == CHAMPION) & (log["sent"] > 0)]
            row = {"round": r + 1, "now": str(pc.context.now),
                   **round_kpis(log, loop.n_boot, loop.ci_level, r),
                   "champion_expected_profit_per_contacted": float(
                       (champion["expected_revenue"] - champion["expected_cost"]).mean()),
                   **{f"violations_{k}": v for k, v in broken.items()},
                   "changes": len(adj.changes) + len(adopted),
                   "challengers": ", ".join(m.name for m in moves) or "-",
                   "adopted": ", ".join(adopted) or "-",
                   "depths": ", ".join(f"{p.name}={p.depth:g}" for p in rules.promotions
                                       if p.depth > 0),
                   "routes": "; ".join(f"{k}: {' > '.join(v)}"
                                       for k, v in rules.channel_routes.items()) or "default"}
            rows.append(row)
            d = tmp / f"round_{r + 1}"
            d.mkdir()
            write_plan_parquet(plan, d / "plan.parquet")
            log.to_csv(d / "outcomes.csv", index=False)
            (d / "rules_used.yaml").write_text(yaml.safe_dump(rules.raw, sort_keys=False))
            changelog = render_changelog(adj, adjust, "outcomes.csv", rules.source or "rules group")
            if adopted:
                changelog += "\n## Adopted challengers\n\n" + "".join(
                    f"- {name}\n" for name in adopted)
            (d / "changelog.md").write_text(changelog)
            test.to_csv(d / "challengers.csv", index=False)
            sent = log[log["sent"] > 0]
            ids = plan.drop_duplicates("user_id").set_index("user_id")
            new = pd.DataFrame({
                "user_idx": ids.loc[sent["user_id"], "user_idx"].to_numpy(np.int64),
                "sent_at": pd.to_datetime(ids.loc[sent["user_id"], "send_time"]).to_numpy()})
            contacts = pd.concat([contacts, new], ignore_index=True)
            rules = new_rules
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "loop.csv", index=False)
        tests.to_csv(tmp / "challengers.csv", index=False)
        (tmp / "loop.md").write_text(render_loop(table, tests))
        plot_loop(table, tmp / "loop.png")
        (tmp / "final_rules.yaml").write_text(yaml.safe_dump(rules.raw, sort_keys=False))
        (tmp / "loop.json").write_text(json.dumps(rows, indent=2, default=str))
    return table


def render_loop(table: pd.DataFrame, tests: pd.DataFrame | None = None) -> str:
    """The per-round table, the goal ratio, the challenger tests and the constraint checks."""
    first, last = table["profit_per_contacted"].iloc[0], table["profit_per_contacted"].iloc[-1]
    e_first = table["expected_profit_per_contacted"].iloc[0]
    e_last = table["expected_profit_per_contacted"].iloc[-1]
    broken = int(table[[f"violations_{k}" for k in CHECKS]].to_numpy().sum())
    cols = ["round", "contacted", "offers", "offer_holdout", "open_rate", "conversion_rate",
            "control_conversion_rate", "revenue", "cost", "profit_per_contacted", "profit_ci_low",
            "profit_ci_high", "expected_profit_per_contacted", "expected_ci_low",
            "expected_ci_high", "champion_expected_profit_per_contacted",
            "expected_incremental_profit_per_contacted", "expected_incremental_profit", "changes"]
    i_first = table["expected_incremental_profit_per_contacted"].iloc[0]
    i_last = table["expected_incremental_profit_per_contacted"].iloc[-1]
    parts = [
        "# Adjustment loop\n",
        "Goal metric: revenue minus promotion cost per contacted user, where revenue is the "
        "contacted users' purchases of planned items at list price and promotion cost is "
        "everything the campaign spent on them (discounts, points, fixed offer costs, "
        "messages); `profit_per_contacted` is its realised value, `expected_*` the same under "
        "the world's model without draw noise.\n",
        f"- rounds: {len(table)}; revenue minus promotion cost per contacted user: round 1 "
        f"{first:.4f}, round {len(table)} {last:.4f} (ratio {last / first:.3f}); expected "
        f"(no draw noise): {e_first:.4f} -> {e_last:.4f} (ratio {e_last / e_first:.3f})"
        if first and e_first else "- no profit in round 1",
        f"- expected incremental profit per contacted user (over the same users not contacted): "
        f"{i_first:.4f} -> {i_last:.4f}; summed: "
        f"{table['expected_incremental_profit'].iloc[0]:.1f} -> "
        f"{table['expected_incremental_profit'].iloc[-1]:.1f}",
        f"- constraint violations over all rounds ({', '.join(CHECKS)}): {broken}\n",
        "## Per round\n", markdown_table(table[cols], "{:.4f}"),
        "\n## Challengers tested and adopted, coupon depths and channel routes used\n",
        markdown_table(table[["round", "challengers", "adopted", "depths", "routes"]]),
    ]
    if tests is not None and not tests.empty:
        parts += ["\n## Challenger tests (revenue - promotion cost per contacted user, arm vs "
                  "champion)\n", markdown_table(tests[[
                      "round", "move", "challenger_users", "champion_users", "difference", "se",
                      "pooled_difference", "pooled_se", "adopted", "expected_difference",
                      "expected_incremental_difference"]],
                      "{:.4f}")]
    parts.append("\n![KPIs per round](loop.png)\n")
    return "\n".join(parts)


def plot_loop(table: pd.DataFrame, path: Path) -> None:
    """Profit per contacted user (with CI), conversion and cost per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    x = table["round"]
    axes[0].errorbar(x, table["profit_per_contacted"],
                     yerr=[table["profit_per_contacted"] - table["profit_ci_low"],
                           table["profit_ci_high"] - table["profit_per_contacted"]], marker="o",
                     label="realised (95% CI)")
    axes[0].plot(x, table["expected_profit_per_contacted"], "--", marker="s",
                 label="expected (world's model)")
    axes[0].set_title("revenue - promotion cost per contacted user")
    axes[0].legend(fontsize=8)
    axes[1].plot(x, table["conversion_rate"], marker="o", label="contacted")
    axes[1].plot(x, table["control_conversion_rate"], marker="s", label="control")
    axes[1].set_title("conversion rate")
    axes[1].legend()
    axes[2].bar(x - 0.2, table["promotion_cost"], width=0.4, label="promotion")
    axes[2].bar(x + 0.2, table["contact_cost"], width=0.4, label="messages")
    axes[2].set_title("cost")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("round")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
