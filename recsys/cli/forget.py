"""``recsys-forget customer=<id>``: erase a customer everywhere the dataset's data went."""

from __future__ import annotations

import glob
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recsys.cli._app import run_app
from recsys.errors import ConfigError, DataError
from recsys.serving.erasure import (
    ErasureReport,
    append_audit,
    audit_record,
    erase_bundle,
    erase_image_features,
    erase_tables,
    find_customer,
    image_rows,
)
from recsys.serving.stage import pseudonymiser


def check_key(cfg: DictConfig) -> None:
    """The built-in pseudonymisation key protects nothing: only the synthetic world may use it."""
    privacy = cfg.privacy
    if (privacy.pseudonymise and str(privacy.key) == str(cfg.demo_key)
            and str(cfg.data.source) != "synthetic"):
        raise ConfigError(f"data source {cfg.data.source!r} is pseudonymised with the built-in demo "
                          f"key: set RECSYS_PSEUDONYM_KEY (the key recsys-data used)",
                          column="preprocess.privacy.key")


def run_forget(cfg: DictConfig) -> ErasureReport:
    """Erase ``cfg.customer`` and append the audit record to ``cfg.audit_path``."""
    from recsys.retrieval.trained import reset_user_id_row

    if cfg.customer is None or not str(cfg.customer):
        raise ConfigError("give the customer to erase: customer=<original id>", column="customer")
    check_key(cfg)
    original = str(cfg.customer)
    to_pseudonym = pseudonymiser(cfg.privacy)
    pseudonym = to_pseudonym(original) if to_pseudonym is not None else original
    dataset_dir = Path(cfg.dataset_dir)
    customer = find_customer(dataset_dir, original, pseudonym)
    manifest = _dataset_manifest(dataset_dir)
    report = ErasureReport()
    for bundle in cfg.bundle_dirs or []:
        if Path(bundle).is_dir():
            erase_bundle(Path(bundle), customer, report)
    for root in (cfg.plans_dir, cfg.mining_dir):
        if root:
            erase_tables(Path(root), customer, report)
    for pattern in cfg.checkpoints or []:
        for path in sorted(glob.glob(str(pattern), recursive=True)):
            row = reset_user_id_row(Path(path), customer.pseudonym, manifest.get("data_fingerprint"))
            if row is not None:
                report.buckets[path] = 1
    fingerprint = str(manifest.get("data_fingerprint") or "")[:12]
    features = Path(cfg.features_dir) / f"{manifest.get('name') or dataset_dir.name}-{fingerprint}"
    erase_image_features(features, customer, image_rows(dataset_dir, customer), report)
    erase_tables(dataset_dir, customer, report)  # last: a failed run can be repeated
    record = audit_record(report, str(manifest.get("name")), str(cfg.reason))
    record["service_reloaded"] = _reload(cfg) if cfg.reload_url else None
    append_audit(Path(cfg.audit_path), record)
    return report


def _dataset_manifest(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "manifest.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable dataset manifest ({err})", file=str(path)) from None


def _reload(cfg: DictConfig) -> bool:
    """POST /admin/reload to the running service (loopback); False when it refused."""
    token = os.environ.get(str(cfg.admin_token_env), "")
    req = urllib.request.Request(f"{str(cfg.reload_url).rstrip('/')}/admin/reload", data=b"",
                                 method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def task(cfg: DictConfig) -> None:
    report = run_forget(cfg)
    print(f"erased 1 customer: {sum(report.rows.values())} rows in {len(report.rows)} files, "
          f"{len(report.bundles)} bundles, {len(report.buckets)} checkpoints -> audit "
          f"{cfg.audit_path}")


def main() -> None:
    run_app("forget", task, check_key)


if __name__ == "__main__":
    main()
