"""The closed loop: campaign -> simulated responses -> adjusted rules -> next campaign, N rounds.

Round r plans at ``cutoff + r * round_days`` with the rules adjusted after round r - 1 and the
messages of earlier rounds as contact history (frequency cap); the world answers with seed
``seed + r``. The history the rules see stays the data's history before the cut-off, so rounds
differ only by the rules, the contact history and the draws.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recsys.data import load_dataset
from recsys.data.atomic import atomic_directory
from recsys.marketing.bootstrap import bootstrap_ci
from recsys.marketing.campaign import BacktestConfig, CampaignInputs, plan_campaign
from recsys.marketing.constraints import CHECKS, violations
from recsys.marketing.simulate import SimulateConfig, simulate_plan
from recsys.marketing.window import make_window
from recsys.marketing.world import LatentWorld
from recsys.mining.report import markdown_table
from recsys.rules.adjust import AdjustSettings, adjust_rules
from recsys.rules.changelog import render_changelog
from recsys.rules.config import RulesConfig
from recsys.rules.outcomes import validate_outcomes
from recsys.rules.plan_io import write_plan_parquet

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class LoopConfig:
    rounds: int
    round_days: float
    n_boot: int
    ci_level: float


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
        # what contacting them added over not contacting them, summed (revenue - cost)
        "expected_incremental_profit": float(
            (t["expected_revenue"] - t["expected_cost"] - t["expected_revenue_control"]).sum()),
        "offer_holdout": int(((t["promotion"] != "none") & (t["offer_sent"] == 0)).sum())
        if "offer_sent" in t.columns else 0,
    }


def run_loop(inp: CampaignInputs, rules: RulesConfig, bt: BacktestConfig, world: LatentWorld,
             sim: SimulateConfig, adjust: AdjustSettings, loop: LoopConfig,
             output_dir: Path) -> pd.DataFrame:
    """Run ``loop.rounds`` rounds; write round_<r>/ (plan, outcomes, rules, changelog) and
    loop.csv, loop.md, loop.png under ``output_dir`` atomically; return the per-round table."""
    contacts = pd.DataFrame({"user_idx": pd.Series(dtype="int64"),
                             "sent_at": pd.Series(dtype="datetime64[ns]")})
    rows: list[dict[str, Any]] = []
    earlier: list[pd.DataFrame] = []  # checked logs of the rounds before (channel routes)
    with atomic_directory(output_dir) as tmp:
        start = inp.now if inp.now is not None else make_window(
            load_dataset(inp.dataset_dir), bt.cutoff, bt.holdout_split, bt.horizon_days).cutoff
        for r in range(loop.rounds):
            now = start + r * loop.round_days * DAY
            pc = plan_campaign(dataclasses.replace(inp, campaign_id=f"round_{r + 1}", now=now,
                                                   contacts=contacts), rules, bt)
            cost = {c: o.cost for c, o in rules.channels.items()}
            log = simulate_plan(pc.plan, world, dataclasses.replace(sim, seed=sim.seed + r), cost,
                                f"round_{r + 1}/plan.parquet")
            broken = violations(pc.plan, pc.context, rules, log, contacts)
            checked = validate_outcomes(log, rules, f"round_{r + 1}/outcomes.csv", pc.plan)
            adj = adjust_rules(rules, checked, adjust,
                               pd.concat(earlier, ignore_index=True) if earlier else None)
            earlier.append(checked)
            row = {"round": r + 1, "now": str(pc.context.now),
                   **round_kpis(log, loop.n_boot, loop.ci_level, r),
                   **{f"violations_{k}": v for k, v in broken.items()},
                   "changes": len(adj.changes),
                   "depths": ", ".join(f"{p.name}={p.depth:g}" for p in rules.promotions
                                       if p.depth > 0),
                   "routes": "; ".join(f"{k}: {' > '.join(v)}"
                                       for k, v in rules.channel_routes.items()) or "default"}
            rows.append(row)
            d = tmp / f"round_{r + 1}"
            d.mkdir()
            write_plan_parquet(pc.plan, d / "plan.parquet")
            log.to_csv(d / "outcomes.csv", index=False)
            (d / "rules_used.yaml").write_text(yaml.safe_dump(rules.raw, sort_keys=False))
            (d / "changelog.md").write_text(render_changelog(adj, adjust, "outcomes.csv",
                                                             rules.source or "rules group"))
            sent = log[log["sent"] > 0]
            ids = pc.plan.drop_duplicates("user_id").set_index("user_id")
            new = pd.DataFrame({
                "user_idx": ids.loc[sent["user_id"], "user_idx"].to_numpy(np.int64),
                "sent_at": pd.to_datetime(ids.loc[sent["user_id"], "send_time"]).to_numpy()})
            contacts = pd.concat([contacts, new], ignore_index=True)
            rules = adj.rules
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "loop.csv", index=False)
        (tmp / "loop.md").write_text(render_loop(table))
        plot_loop(table, tmp / "loop.png")
        (tmp / "final_rules.yaml").write_text(yaml.safe_dump(rules.raw, sort_keys=False))
        (tmp / "loop.json").write_text(json.dumps(rows, indent=2, default=str))
    return table


def render_loop(table: pd.DataFrame) -> str:
    """The per-round table, the goal ratio and the constraint checks."""
    first, last = table["profit_per_contacted"].iloc[0], table["profit_per_contacted"].iloc[-1]
    e_first = table["expected_profit_per_contacted"].iloc[0]
    e_last = table["expected_profit_per_contacted"].iloc[-1]
    broken = int(table[[f"violations_{k}" for k in CHECKS]].to_numpy().sum())
    cols = ["round", "contacted", "offers", "offer_holdout", "open_rate", "conversion_rate",
            "control_conversion_rate", "revenue", "cost", "profit_per_contacted", "profit_ci_low",
            "profit_ci_high", "expected_profit_per_contacted", "expected_ci_low",
            "expected_ci_high", "expected_incremental_conversions", "expected_incremental_profit",
            "changes"]
    i_first = table["expected_incremental_profit"].iloc[0]
    i_last = table["expected_incremental_profit"].iloc[-1]
    return "\n".join([
        "# Adjustment loop\n",
        f"- rounds: {len(table)}; revenue minus cost per contacted user: round 1 {first:.4f}, "
        f"round {len(table)} {last:.4f} (ratio {last / first:.3f}); expected under the world's "
        f"model (no draw noise): {e_first:.4f} -> {e_last:.4f} (ratio {e_last / e_first:.3f})"
        if first and e_first else "- no profit in round 1",
        f"- expected incremental profit of the contacts (revenue - cost over the same users not "
        f"contacted, summed): {i_first:.1f} -> {i_last:.1f}",
        f"- constraint violations over all rounds ({', '.join(CHECKS)}): {broken}\n",
        "## Per round\n", markdown_table(table[cols], "{:.4f}"),
        "\n## Coupon depths and channel routes used\n",
        markdown_table(table[["round", "depths", "routes"]]),
        "\n![KPIs per round](loop.png)\n",
    ])


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
    axes[0].set_title("revenue - cost per contacted user")
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
