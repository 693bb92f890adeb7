"""Rules at request time equal recsys-campaign's offline plan for the same users and bundle;
explanations add up to the retrieval score and consent removes the social contribution."""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from http_fixtures import TOKEN_ENV, copy_bundle, make_app, serve_settings
from module_loading import load_module

from recsys.marketing.campaign import BacktestConfig, CampaignInputs, plan_campaign
from recsys.marketing.candidates import HistoryCandidateConfig
from recsys.mining import MiningConfig, run_mining
from recsys.retrieval.embeddings import StaticEmbeddings
from recsys.retrieval.index_spec import load_spec
from recsys.rules import RulesConfig, parse_rules
from recsys.rules.explain import explanations_as_json
from recsys.rules.plan_io import read_candidates
from recsys.serving import ExportSettings, export_bundle
from recsys.serving.candidates import write_candidates
from recsys.serving.online_rules import ContextSettings, OnlineRules
from recsys.serving.recommender import Recommender
from recsys.serving.state import Served

ROOT = Path(__file__).resolve().parents[3]
CANDIDATES_K = 30


def _mining_world() -> Any:
    return load_module("mining_world", ROOT / "tests/unit/mining/mining_world.py")


class ExplainedStatic(StaticEmbeddings):
    """Static vectors whose signals can be removed: each signal adds its own component."""

    def __init__(self, n_users: int, n_items: int, dim: int = 6) -> None:
        rng = np.random.default_rng(3)
        self.parts = {s: rng.normal(size=(n_users, dim)) * 0.5 for s in ("behaviour", "social")}
        self.base_users = rng.normal(size=(n_users, dim))
        self.base_items = rng.normal(size=(n_items, dim))
        self.image = rng.normal(size=(n_items, dim)) * 0.5
        super().__init__(self.base_items + self.image,
                         self.base_users + self.parts["behaviour"] + self.parts["social"], "dot")

    def ablated_user_embeddings(self, user_idx: np.ndarray, drop: Collection[str],
                                batch_size: int = 0) -> np.ndarray:
        kept = self.base_users + sum(p for s, p in self.parts.items() if s not in drop)
        return np.asarray(kept)[user_idx]

    def ablated_item_embeddings(self, drop: Collection[str], batch_size: int = 0) -> np.ndarray:
        return self.base_items if "image" in drop else self.items


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    mw = _mining_world()
    root = tmp_path_factory.mktemp("online")
    data = Path(mw.build_tiny_dataset(root / "data"))
    mining = run_mining(data, root / "mining", MiningConfig.from_cfg(mw.compose("mine").mining))
    from recsys.data import load_dataset

    ds = load_dataset(data)
    model = ExplainedStatic(len(ds.users), len(ds.items))
    settings = ExportSettings(batch_size=16, history_splits=("train",), item_columns=None,
                              user_tower=False)
    bundle = export_bundle(model, ds, load_spec("flat"), root / "bundle", settings, {"t": 1})
    return {"data": data, "mining": mining.output_dir, "bundle": bundle, "root": root}


@pytest.fixture(scope="module")
def rules() -> RulesConfig:
    raw = copy.deepcopy(yaml.safe_load((ROOT / "conf/rules/default.yaml").read_text()))
    # campaign-wide budgets are a batch notion: a request cannot see the other users
    raw["caps"]["campaign_budget"] = None
    for option in raw["channels"]["options"].values():
        option["budget"] = 1e9
    return parse_rules(raw)


@pytest.fixture(scope="module")
def planned(world: dict[str, Any], rules: RulesConfig) -> Any:
    """recsys-campaign's plan (as of the holdout start) over the bundle's candidates."""
    root = world["root"]
    cands = read_candidates(write_candidates(world["bundle"], world["data"], CANDIDATES_K, True,
                                             root / "candidates.parquet"))
    inputs = CampaignInputs(
        campaign_id="c", dataset_dir=world["data"], mining_dir=world["mining"],
        output_dir=root / "campaign", purchase_events=("purchase",),
        aliases={"category": ["category"]}, demand_window_days=28.0,
        candidates=HistoryCandidateConfig(CANDIDATES_K, 28.0, 1.0, 0.1))
    bt = BacktestConfig(cutoff=None, holdout_split="test", horizon_days=None, retention_days=30.0,
                        n_boot=10, ci_level=0.9, seed=0, ks=(5,))
    return plan_campaign(inputs, rules, bt, cands)


@pytest.fixture(scope="module")
def offline(planned: Any) -> pd.DataFrame:
    return planned.plan


@pytest.fixture(scope="module")
def client(world: dict[str, Any], rules: RulesConfig, planned: Any) -> Iterator[TestClient]:
    """The service over the bundle, its rules context the campaign's (as of its cut-off)."""
    def load(source: Path) -> Served:
        return Served(Recommender.load(source), OnlineRules(rules, planned.context), source,
                      source)

    settings = serve_settings(world["bundle"], candidates_k=CANDIDATES_K)
    with TestClient(make_app(settings, load)) as c:
        yield c


def test_the_service_builds_the_campaign_context_from_config(
        world: dict[str, Any], rules: RulesConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = ContextSettings(dataset_dir=world["data"], mining_dir=world["mining"],
                          history_splits=["train", "val"], purchase_events=["purchase"],
                          aliases={"category": ["category"]}, demand_window_days=28.0)
    settings = serve_settings(world["bundle"], rules=rules, context=ctx)
    other = copy_bundle(world["bundle"], tmp_path / "other",
                        lambda m: m.update(data_fingerprint="another", created_at="2999"))
    with TestClient(make_app(settings)) as c:
        body = c.post("/recommend", json={"user_id": "u002", "k": 4}).json()
        monkeypatch.setenv(TOKEN_ENV, "t")
        r = c.post("/admin/reload", json={"bundle_dir": str(other)},
                   headers={"Authorization": "Bearer t"})
    assert body["rules_applied"] and 0 < len(body["items"]) <= 4
    assert r.status_code == 409 and "exported from dataset 'another'" in r.json()["detail"]


def test_request_time_rules_equal_the_offline_campaign(client: TestClient, offline: pd.DataFrame,
                                                       rules: RulesConfig) -> None:
    users = sorted(offline["user_id"].unique())
    assert len(users) >= 20
    sample = users[::2]
    explained = explanations_as_json(offline["explanation"])
    offline = offline.assign(fired=[yaml.safe_load(e)["rules_fired"] for e in explained])
    for user in sample:
        body = client.post("/recommend", json={"user_id": user, "k": rules.top_k}).json()
        assert body["rules_applied"] and body["known_user"]
        want = offline[offline["user_id"] == user].sort_values("rank")
        got = body["items"]
        assert [i["item_id"] for i in got] == want["item_id"].tolist(), user
        np.testing.assert_allclose([i["score"] for i in got], want["score"], rtol=1e-9)
        assert [i["promotion"] or "none" for i in got] == want["promotion"].astype(str).tolist()
        assert [i["channel"] or "none" for i in got] == want["channel"].astype(str).tolist()
        assert [i["explanation"]["rules_fired"] for i in got] == want["fired"].tolist()
        np.testing.assert_allclose([i["suggested_price"] for i in got], want["suggested_price"])
        sent = pd.to_datetime([i["send_time"] for i in got]).tz_localize(None)
        assert list(sent) == list(pd.to_datetime(want["send_time"])) or want["send_time"].isna().all()


def test_contributions_sum_and_consent_removes_the_social_part(
        client: TestClient, offline: pd.DataFrame, world: dict[str, Any]) -> None:
    from recsys.data import load_dataset

    users = load_dataset(world["data"]).users.set_index("user_id")
    seen = {True: 0, False: 0}
    for user in sorted(offline["user_id"].unique())[:20]:
        consent = bool(users.loc[user, "social_image_consent"])
        body = client.post("/recommend", json={"user_id": user, "k": 5}).json()
        for item in body["items"]:
            parts = item["explanation"]["contributions"]
            assert sum(parts.values()) == pytest.approx(item["retrieval_score"], abs=1e-9)
            assert (parts["social"] != 0) == consent
            assert item["explanation"]["social_image"].startswith("used" if consent else "ignored")
            seen[consent] += 1
        raw = client.app.state.serving.current.recommender.candidates([user], CANDIDATES_K)
        raw = raw.set_index("item_id")
        for item in body["items"]:
            social = float(raw.loc[item["item_id"], "social_score"])
            score = float(raw.loc[item["item_id"], "score"])
            assert abs(social) > 0
            assert item["retrieval_score"] == pytest.approx(score if consent else score - social,
                                                            abs=1e-6)
    assert seen[True] and seen[False]


def test_new_user_with_consent_gets_rules(client: TestClient, offline: pd.DataFrame) -> None:
    req = {"new_user": {"features": {}, "history": ["i001", "i002"],
                        "consent": {"marketing": True, "social_image": False}}, "k": 5}
    r = client.post("/recommend", json=req)
    body = r.json()
    assert r.status_code == 200, r.text
    assert not body["known_user"] and body["rules_applied"]
    assert 0 < len(body["items"]) <= 5
    assert not {"i001", "i002"} & {i["item_id"] for i in body["items"]}
    assert all(i["channel"] is not None for i in body["items"])
    no_consent = client.post("/recommend", json={**req, "new_user": {"history": ["i001"]}}).json()
    assert no_consent["items"] == []  # the no_marketing_consent filter removes everything
