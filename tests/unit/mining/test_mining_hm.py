"""Mining and a rules campaign on the real H&M sample (processed by the data stage)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mining_world import compose

from recsys.data import load_dataset
from recsys.data.pipeline import build_dataset
from recsys.mining import MiningConfig, load_mining, run_mining
from recsys.rules import apply_rules, build_context, rules_from_cfg

ROOT = Path(__file__).resolve().parents[3]
HM = Path(os.environ.get("RECSYS_HM_DIR", ROOT.parent / "shared" / "data" / "hm"))

pytestmark = [pytest.mark.hm, pytest.mark.slow,
              pytest.mark.skipif(not (HM / "transactions.csv").is_file(), reason="no H&M sample")]


@pytest.fixture(scope="module")
def hm_mined(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("hm")
    data = build_dataset(compose("data", ["data=hm", f"paths.hm_dir={HM}", f"paths.output_dir={out}"]))
    mining = run_mining(data, out / "mining", MiningConfig.from_cfg(compose("mine").mining))
    return Path(data), mining.output_dir


def test_mining_on_hm(hm_mined: tuple[Path, Path]) -> None:
    _, mining_dir = hm_mined
    m = load_mining(mining_dir)
    assert len(m.segments) == 1_364
    assert m.meta["columns"]["category"] == "product_type_name"
    assert (m.association_rules["level"] == "category").sum() > 0
    assert m.profiles["top_category"].notna().mean() > 0.9
    clf = json.loads((mining_dir / "classifiers.json").read_text())
    assert max(v["auc"] for v in clf["churn"]["models"].values()) > 0.65
    assert m.meta["best_k"] >= 2


def test_campaign_rules_on_hm(hm_mined: tuple[Path, Path]) -> None:
    data, mining_dir = hm_mined
    ds = load_dataset(data)
    popular = ds.train["item_idx"].value_counts().index[:30].to_numpy()
    users = np.sort(ds.train["user_idx"].unique())[:300]
    cands = pd.DataFrame({"user_idx": np.repeat(users, len(popular)),
                          "item_idx": np.tile(popular, len(users))})
    cands["rank"] = np.tile(np.arange(1, len(popular) + 1), len(users))
    cands["behaviour_score"] = 1.0 / cands["rank"]
    cands["image_score"] = 0.0
    cands["social_score"] = 0.1
    cands["score"] = cands[["behaviour_score", "image_score", "social_score"]].sum(axis=1)
    cfg = compose("campaign", ["candidates_path=unused"])
    ctx = build_context(data, mining_dir, history_splits=["train"], purchase_events=["purchase"],
                        aliases={k: list(v) for k, v in cfg.mining.columns.items()},
                        demand_window_days=28.0).context
    res = apply_rules(cands, ctx, rules_from_cfg(cfg.rules))
    plan = res.recommendations
    consent = ds.users.set_index("user_idx")["marketing_consent"]
    assert consent.reindex(plan["user_idx"]).all()
    assert plan.groupby("user_idx").size().max() <= 10
    no_social = ~ds.users.set_index("user_idx")["social_image_consent"].reindex(plan["user_idx"])
    assert (plan.loc[no_social.to_numpy(), "social_score"] == 0).all()
    assert res.rule_counts["already_bought"] > 0
