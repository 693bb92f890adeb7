"""recsys-simulate: seeded, vectorised (== the per-row loop), control group, bad inputs."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from marketing_world import SYNTH

from recsys.cli import campaign as campaign_cli
from recsys.cli import simulate as simulate_cli
from recsys.errors import DataError
from recsys.marketing.response import expected, reference_utility, respond, respond_loop
from recsys.marketing.settings import simulate_config
from recsys.marketing.simulate import draws, plan_arrays, simulate_plan
from recsys.marketing.world import LatentWorld


def _argv(monkeypatch: pytest.MonkeyPatch, app: str, out: Path, tmp: Path, *extra: str) -> None:
    monkeypatch.setattr(sys, "argv", [app, *SYNTH, f"paths.output_dir={out}",
                                      f"hydra.run.dir={tmp / 'h'}", *extra])


@pytest.fixture(scope="module")
def planned(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The campaign plan of the small world (campaign_id=campaign)."""
    tmp = tmp_path_factory.mktemp("plan")
    mp = pytest.MonkeyPatch()
    _argv(mp, "recsys-campaign", synth, tmp, "backtest.n_boot=20")
    campaign_cli.main()
    mp.undo()
    return synth / "campaign" / "synthetic" / "campaign" / "plan.parquet"


def _world(synth: Path) -> tuple[LatentWorld, object]:
    from mining_world import compose

    cfg = compose("simulate", [*SYNTH, f"paths.output_dir={synth}"])
    return simulate_cli.world_of(cfg), simulate_config(cfg.simulate)


def test_simulate_cli_writes_a_seeded_log_with_a_random_control(
        synth: Path, planned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "log.csv"
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"output_path={out}")
    simulate_cli.main()
    log = pd.read_csv(out)
    plan = pd.read_parquet(planned)
    reachable = plan.loc[plan["channel"].astype(str) != "none", "user_id"].nunique()
    assert len(log) == reachable and log["user_id"].is_unique
    control = log[log["group"] == "control"]
    assert 0.03 < len(control) / len(log) < 0.25 and (control["sent"] == 0).all()
    assert (control["cost"] == 0).all() and (log.loc[log["group"] == "treatment", "sent"] == 1).all()
    treat = log[log["group"] == "treatment"]
    assert treat["opened"].sum() > 0 and treat["converted"].sum() > 0 and treat["revenue"].sum() > 0
    # revenue and costs are consistent: a converted user has revenue, costs are non-negative
    assert ((log["converted"] > 0) == (log["revenue"] > 0)).all() and (log["cost"] >= 0).all()
    again = tmp_path / "again.csv"
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"output_path={again}")
    simulate_cli.main()
    pd.testing.assert_frame_equal(log, pd.read_csv(again))
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"output_path={again}",
          "simulate.seed=7")
    simulate_cli.main()
    assert not log["converted"].equals(pd.read_csv(again)["converted"])


def test_vectorised_response_equals_the_per_row_loop(synth: Path, planned: Path) -> None:
    world, sim = _world(synth)
    arrays, _ = plan_arrays(pd.read_parquet(planned), world, sim.response, {}, "plan")
    arrays = type(arrays)(**{**arrays.__dict__, "channel": np.where(
        np.arange(len(arrays.user)) % 5 == 0, -1, arrays.channel)})
    u_ref = reference_utility(world, arrays.day)
    _, u_open, u_buy, _ = draws(3, len(arrays.user), len(arrays.item))
    u_buy = u_buy * 0.05  # many purchases, so that the comparison has something to compare
    fast = respond(world, sim.response, arrays, u_ref, u_open, u_buy)
    slow = respond_loop(world, sim.response, arrays, u_ref, u_open, u_buy)
    assert fast.bought.sum() > 20 and fast.opened.sum() > 20
    assert np.array_equal(fast.bought, slow.bought) and np.array_equal(fast.opened, slow.opened)
    np.testing.assert_allclose(fast.revenue, slow.revenue)
    np.testing.assert_allclose(fast.promotion_cost, slow.promotion_cost)
    # the exact expectations agree with the mean of many draws
    exp = expected(world, sim.response, arrays, u_ref)
    rng = np.random.default_rng(0)
    conv = np.mean([respond(world, sim.response, arrays, u_ref, rng.random(len(arrays.user)),
                            rng.random(len(arrays.item))).converted.mean() for _ in range(300)])
    assert conv == pytest.approx(exp.p_treated.mean(), rel=0.05)


def test_offers_and_contact_raise_purchases(synth: Path, planned: Path) -> None:
    world, sim = _world(synth)
    plan = pd.read_parquet(planned)
    arrays, _ = plan_arrays(plan, world, sim.response, {}, "plan")
    exp = expected(world, sim.response, arrays, reference_utility(world, arrays.day))
    assert (exp.p_treated >= exp.p_control - 1e-12).all() and exp.p_treated.mean() > exp.p_control.mean()


def test_offer_holdout_gets_the_message_without_the_offer(synth: Path, planned: Path) -> None:
    world, sim = _world(synth)
    plan = pd.read_parquet(planned)
    plan = plan.assign(promotion="c", promotion_offer="coupon", promotion_depth=0.3)
    cost = {"app_push": 0.001, "email": 0.002, "sms": 0.05, "social_ads": 0.02}
    none = simulate_plan(plan, world, dataclasses.replace(sim, offer_holdout_share=0.0), cost)
    half = simulate_plan(plan, world, dataclasses.replace(sim, offer_holdout_share=0.5), cost)
    treated = half["group"] == "treatment"
    # the same control group and opens (draw order kept); offers only to treated users
    assert (half["group"] == none["group"]).all() and (half["opened"] == none["opened"]).all()
    assert (none.loc[treated, "offer_sent"] == 1).all() and (half.loc[~treated, "offer_sent"] == 0).all()
    held = treated & (half["offer_sent"] == 0)
    assert 0.35 < held.sum() / treated.sum() < 0.65
    assert (half.loc[held, "promotion_cost"] == 0).all() and (half.loc[held, "promotion"] == "c").all()
    # without the discount the expected revenue of a held-out user is at list price: higher per
    # purchase, fewer purchases; its expected cost is the message alone
    assert (half.loc[held, "expected_cost"] == half.loc[held, "contact_cost"]).all()
    assert (half.loc[held, "p_treated"] <= none.loc[held, "p_treated"] + 1e-12).all()
    first = plan.drop_duplicates("user_id").set_index("user_id")
    reason = first.loc[half["user_id"], "channel_reason"].astype(str).to_numpy()
    assert (half["preferred"].to_numpy() == (reason == "preferred")).all()


def test_duplicate_plan_rows_and_unknown_users_are_refused(synth: Path, planned: Path) -> None:
    world, sim = _world(synth)
    plan = pd.read_parquet(planned)
    dup = pd.concat([plan, plan.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate") as err:
        simulate_plan(dup, world, sim, {}, "plan.parquet")
    assert err.value.row == len(dup) and err.value.column == "item_id"
    bad = plan.copy()
    bad["user_id"] = bad["user_id"].astype(str)
    bad.loc[bad.index[bad["channel"].astype(str) != "none"][0], "user_id"] = "stranger"
    with pytest.raises(DataError, match="'stranger' is not in the world"):
        simulate_plan(bad, world, sim, {}, "plan.parquet")


def test_simulator_refuses_a_world_of_another_config(
        synth: Path, planned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "log.csv"
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"output_path={out}",
          "data.generator.seed=43")
    with pytest.raises(SystemExit) as exc:
        simulate_cli.main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "world fingerprint mismatch" in err and "world.json" in err and not out.exists()
    meta = json.loads((synth / "raw" / "synthetic" / "world.json").read_text())
    assert meta["config_hash"] in err


def test_adjust_reads_the_simulated_log(synth: Path, planned: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.cli import adjust as adjust_cli

    log = tmp_path / "log.csv"
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"output_path={log}")
    simulate_cli.main()
    out = tmp_path / "adjusted"
    _argv(monkeypatch, "recsys-adjust", synth, tmp_path, f"outcomes_path={log}",
          f"plan_path={planned}", f"output_dir={out}", "roi_metric=incremental_roi",
          "min_sent=20", "min_control=5")
    adjust_cli.main()
    changelog = (out / "changelog.md").read_text()
    assert "incremental_roi" in changelog and (out / "rules.yaml").is_file()


def test_simulate_cli_duplicate_plan_rows_exit_2(synth: Path, planned: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    plan = pd.read_parquet(planned)
    dup = tmp_path / "plan.parquet"
    pd.concat([plan, plan.iloc[[0]]], ignore_index=True).to_parquet(dup)
    out = tmp_path / "log.csv"
    _argv(monkeypatch, "recsys-simulate", synth, tmp_path, f"plan_path={dup}",
          f"output_path={out}")
    with pytest.raises(SystemExit) as exc:
        simulate_cli.main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert f"file {dup}, row {len(plan) + 1}, column 'item_id'" in err and not out.exists()
