"""``recsys-uplift``: two-model uplift from randomised simulator logs vs random and the churn rule."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from recsys.cli import campaign as campaign_cli
from recsys.cli import simulate as simulate_cli
from recsys.cli._app import run_app
from recsys.cli.loop import stage
from recsys.config import as_dict
from recsys.marketing.settings import simulate_config
from recsys.marketing.uplift import UpliftConfig
from recsys.marketing.uplift_features import PlanFeatureConfig
from recsys.marketing.uplift_run import run_uplift


def uplift_config(cfg: DictConfig) -> UpliftConfig:
    e, f = cfg.experiment, cfg.features
    p = f.get("plan")
    plan = None if p is None else PlanFeatureConfig(
        affinity_columns=tuple(str(c) for c in p.affinity_columns),
        affinity_prior=float(p.affinity_prior), hour_column=str(p.hour_column),
        log_numeric=tuple(str(c) for c in p.log_numeric))
    return UpliftConfig(
        promotion=str(e.promotion), offer=str(e.offer), depth=float(e.depth),
        fixed_cost=float(e.fixed_cost), replicates=int(e.replicates),
        folds=int(e.folds), numeric=tuple(str(c) for c in f.numeric),
        categorical=tuple(str(c) for c in f.categorical),
        learners={str(k): dict(v) for k, v in as_dict(cfg.learners, "learners").items()},
        validation_share=float(cfg.validation_share),
        churn_column=str(cfg.churn_rule.column), churn_threshold=float(cfg.churn_rule.threshold),
        seeds=tuple(int(x) for x in e.seeds), plan=plan,
        interactions=tuple(str(c) for c in cfg.get("interactions") or ()))


def task(cfg: DictConfig) -> None:
    """Run the experiment and print the comparison."""
    ccfg = stage("campaign", cfg, cfg.campaign_overrides)
    scfg = stage("simulate", cfg, cfg.simulate_overrides)
    table = run_uplift(
        campaign_cli.inputs(ccfg), campaign_cli.rules_of(ccfg), campaign_cli.backtest_config(ccfg),
        simulate_cli.world_of(scfg), simulate_config(scfg.simulate), uplift_config(cfg),
        int(cfg.n_boot), float(cfg.ci_level), Path(cfg.output_dir))
    for r in table.itertuples(index=False):
        print(f"{r.method:<14} coupons {r.coupons}: incremental conversions per coupon "
              f"{r.incremental_per_coupon:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}], Qini AUC "
              f"{r.qini_auc:.4f}, uplift@k {r.uplift_at_k:.4f}")
    s = json.loads((Path(cfg.output_dir) / "uplift.json").read_text())
    for r in s["seeds"]:
        print(f"seed {r['seed']}: model / churn rule {r['ratio']:.3f}x [{r['ci_low']:.3f}, "
              f"{r['ci_high']:.3f}] (learners per fold: {r['learners']})")
    print(f"uplift: model / churn rule {s['mean_ratio_over_seeds']:.3f}x (mean over "
          f"{len(s['seeds'])} seeds) at {s['coupons']} coupons -> {cfg.output_dir}")


def main() -> None:
    run_app("uplift", task)


if __name__ == "__main__":
    main()
