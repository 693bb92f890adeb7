"""Run directories: every training run gets its own ``<runs_root>/<run_id>`` holding the resolved
config, its hash, the data fingerprint, the package version and the git commit; ``ckpt_path=last``
finds the newest run of that name; the newest finished run is linked as ``<runs_root>/latest``."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import recsys
from recsys.data.atomic import write_json_atomic
from recsys.data.fingerprint import config_hash
from recsys.errors import ModelError

LATEST = "latest"
RUN_INFO = "run.json"
RUN_CONFIG = "config.yaml"
LAST_CKPT = Path("checkpoints") / "last.ckpt"
# Set by rank 0 for the processes Lightning's DDP launcher starts, which compose anew.
RUN_ID_ENV = "RECSYS_RUN_ID"


def newest_resumable(runs_root: Path) -> Path:
    """The run under ``runs_root`` whose ``last.ckpt`` was written last."""
    runs = [p for p in runs_root.iterdir() if p.name != LATEST and (p / LAST_CKPT).is_file()
            ] if runs_root.is_dir() else []
    if not runs:
        raise ModelError("ckpt_path=last but no run of this name has a last checkpoint "
                         f"({LAST_CKPT}) to resume", file=str(runs_root))
    return max(runs, key=lambda p: ((p / LAST_CKPT).stat().st_mtime, p.name))


def choose_run(cfg: DictConfig) -> Path | None:
    """Fix ``cfg.run_id`` for this run and return the checkpoint to resume, if any.

    ``ckpt_path=last`` resumes the newest run of ``cfg.name``, or the run ``run_id=...`` names; a
    new run takes a free id (a suffix is added when the id is taken).
    """
    root = Path(cfg.runs_root)
    inherited = os.environ.get(RUN_ID_ENV) if int(os.environ.get("LOCAL_RANK", "0")) > 0 else None
    if inherited:
        cfg.run_id = inherited
        return root / inherited / LAST_CKPT if cfg.get("ckpt_path") == "last" else None
    chosen = not OmegaConf.is_interpolation(cfg, "run_id")  # run_id=... given, not the default
    run_id = str(cfg.run_id)
    if cfg.get("ckpt_path") == "last":
        run = root / run_id if chosen else newest_resumable(root)
        if not (run / LAST_CKPT).is_file():
            raise ModelError("ckpt_path=last but this run has no last checkpoint to resume",
                             file=str(run / LAST_CKPT))
        cfg.run_id = run.name
        return run / LAST_CKPT
    candidate, n = run_id, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{run_id}_{n}"
    cfg.run_id = candidate
    return None


def git_commit(where: Path) -> str | None:
    """The commit of the git work tree holding ``where`` (``+dirty`` with local changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _config_hash(cfg: DictConfig) -> str:
    """Hash of the resolved config, the same for two runs of one setting (run id left out)."""
    container: Any = OmegaConf.to_container(cfg, resolve=True)
    for key in ("run_id", "run_dir", "ckpt_path"):
        container.pop(key, None)
    text = OmegaConf.to_yaml(OmegaConf.create(container)).replace(str(cfg.run_dir), "<run_dir>")
    return config_hash(text)


def record_run(cfg: DictConfig, data_fingerprint: str | None, resumed_from: Path | None) -> Path:
    """Write ``config.yaml`` (resolved) and ``run.json`` into the run directory."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{RUN_CONFIG}.tmp"
    tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    os.replace(tmp, run_dir / RUN_CONFIG)
    write_json_atomic(run_dir / RUN_INFO, {
        "name": str(cfg.name),
        "run_id": str(cfg.run_id),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_hash": _config_hash(cfg),
        "data_fingerprint": data_fingerprint,
        "dataset_dir": str(cfg.dataset_dir),
        "package_version": recsys.__version__,
        "git_commit": git_commit(Path(recsys.__file__).resolve().parent),
        "resumed_from": None if resumed_from is None else str(resumed_from),
    })
    return run_dir


def link_latest(cfg: DictConfig) -> None:
    """Point ``<runs_root>/latest`` at this run (atomically, relative link)."""
    root = Path(cfg.runs_root)
    tmp = root / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(str(cfg.run_id), target_is_directory=True)
    os.replace(tmp, root / LATEST)
