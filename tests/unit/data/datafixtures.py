"""Helpers to run the data stage on the tiny CSV source of conftest.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[3] / "recsys" / "conf"


def source_cfg(root: Path) -> dict[str, Any]:
    return {
        "name": "tiny",
        "source": "generic",
        "root": str(root),
        "positive_events": ["purchase"],
        "tables": {
            "interactions": {
                "path": "interactions.csv",
                "columns": {"user_id": "cust", "item_id": "sku", "timestamp": "day", "price": "amount",
                            "channel": "ch"},
                "date_format": "%Y-%m-%d",
                "constants": {"event": "purchase"},
                "value_maps": {"channel": {"1": "store", "2": "online"}},
            },
            "users": {
                "path": "users.csv",
                "columns": {"user_id": "cust", "age": "age", "gender": "sex"},
                "derive": {"marketing_consent": {"column": "newsletter", "in": ["yes"]}},
                "pii": {"email": "coarsen"},
            },
            "items": {
                "path": "items.csv",
                "columns": {"item_id": "sku", "price": "list_price", "image_path": "img"},
                "categorical": ["cat"],
                "multi_hot": {"tags": "|"},
            },
        },
    }


def make_cfg(root: Path, out: Path, **overrides: Any) -> DictConfig:
    """The data-stage config: the real preprocess/split YAML plus the tiny source."""
    pre = OmegaConf.load(CONF / "preprocess" / "default.yaml")
    split = OmegaConf.load(CONF / f"split/{overrides.pop('split', 'temporal')}.yaml")
    cfg = OmegaConf.create({"data": source_cfg(root), "preprocess": pre, "split": split, "output_dir": str(out)})
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def run_data_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`recsys-data` with ``args`` as a separate process."""
    return subprocess.run([sys.executable, "-m", "recsys.cli.data", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
