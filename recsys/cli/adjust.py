"""``recsys-adjust outcomes_path=...``: adjust the rules from campaign outcomes."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from recsys.cli._app import run_app
from recsys.cli.campaign import rules_of
from recsys.rules.adjust import AdjustSettings
from recsys.rules.changelog import run_adjust


def settings(cfg: DictConfig) -> AdjustSettings:
    targets = OmegaConf.to_container(cfg.targets, resolve=True)
    assert isinstance(targets, dict)
    per_channel = targets.pop("per_channel", None) or {}
    return AdjustSettings(
        targets={str(k): float(v) for k, v in targets.items()},
        per_channel={str(c): {str(k): float(v) for k, v in m.items()} for c, m in per_channel.items()},
        min_sent=int(cfg.min_sent),
        max_step=float(cfg.max_step),
        depth_min=float(cfg.coupon_depth.min),
        depth_max=float(cfg.coupon_depth.max),
        depth_step=float(cfg.coupon_depth.step),
        roi_metric=str(cfg.roi_metric),
        min_control=int(cfg.min_control),
        offer_evidence_z=float(cfg.offer_evidence_z),
        min_offer_holdout=int(cfg.min_offer_holdout),
        route_channels=bool(cfg.route_channels),
    )


def task(cfg: DictConfig) -> None:
    """Write the adjusted rules and print the changes."""
    out = run_adjust(rules_of(cfg), Path(cfg.outcomes_path), Path(cfg.output_dir), settings(cfg),
                     Path(cfg.plan_path) if cfg.plan_path else None)
    print(f"adjust: {len(out.changes)} change(s) -> {out.output_dir}")
    for change in out.changes:
        print(f"  {change}")


def main() -> None:
    run_app("adjust", task)


if __name__ == "__main__":
    main()
