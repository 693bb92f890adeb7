"""Checks that a simulated round kept the rules' promises: consent, frequency cap, budgets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.rules.config import RulesConfig
from recsys.rules.context import RuleContext

DAY = pd.Timedelta(days=1)
CHECKS = ("no_consent", "no_social_consent", "frequency_cap", "channel_budget", "campaign_budget")


def violations(plan: pd.DataFrame, ctx: RuleContext, rules: RulesConfig, log: pd.DataFrame,
               contacts: pd.DataFrame | None) -> dict[str, int]:
    """Count of each broken promise in one round: messages sent without marketing consent,
    social ads without social-image consent, users over ``max_contacts`` in the contact window
    (past contacts + this one), channels over budget, expected promotion cost over the campaign
    budget."""
    ids = plan.drop_duplicates("user_id").set_index("user_id")["user_idx"]
    sent = log[log["sent"] > 0]
    users = ids.reindex(sent["user_id"].astype(str)).to_numpy(np.int64)
    consent = ctx.users["marketing_consent"].to_numpy(bool)[users]
    social = ctx.users["social_image_consent"].to_numpy(bool)[users]
    ch = sent["channel"].astype(str).to_numpy()
    out = {"no_consent": int((~consent).sum()),
           "no_social_consent": int(((ch == "social_ads") & ~social).sum())}
    caps = rules.caps
    if caps.max_contacts is not None and contacts is not None and len(contacts):
        since = ctx.now - caps.contact_window_days * DAY
        recent = contacts[(contacts["sent_at"] > since) & (contacts["sent_at"] <= ctx.now)]
        before = np.bincount(recent["user_idx"].to_numpy(np.int64), minlength=len(ctx.users))
        out["frequency_cap"] = int((before[users] + 1 > caps.max_contacts).sum())
    else:
        out["frequency_cap"] = 0
    spend = pd.Series(ch).value_counts()
    out["channel_budget"] = int(sum(
        n * rules.channels[c].cost > rules.channels[c].budget + 1e-9 for c, n in spend.items()))
    per_user = plan.drop_duplicates("user_idx")["expected_promotion_cost"].sum()
    budget = caps.campaign_budget
    out["campaign_budget"] = int(budget is not None and per_user > budget + 1e-9)
    return out
