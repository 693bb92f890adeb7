"""Process runtime settings: glibc malloc thresholds from conf/runtime, applied by every app."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recsys import runtime
from recsys.runtime import apply_runtime, default_runtime, tune_malloc


def test_default_runtime_is_read_from_the_yaml() -> None:
    cfg = default_runtime()
    assert cfg["malloc_mmap_threshold"] == 2**30 and cfg["malloc_trim_threshold"] == 2**30


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_thresholds_are_accepted_by_glibc() -> None:
    assert tune_malloc(2**30, 2**30) is True
    assert tune_malloc(0, 0) is True  # nothing to set


def test_zero_values_or_no_block_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(runtime, "tune_malloc", lambda m, t: calls.append((m, t)) or True)
    apply_runtime(None)
    apply_runtime({"malloc_mmap_threshold": 0, "malloc_trim_threshold": 0})
    assert calls == []
    apply_runtime({"malloc_mmap_threshold": 5, "malloc_trim_threshold": 7})
    assert calls == [(5, 7)]


def test_run_app_applies_the_composed_runtime_before_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys.cli import _app

    events: list[object] = []
    monkeypatch.setattr(_app, "apply_runtime", lambda cfg: events.append(dict(cfg)))
    monkeypatch.setattr(sys, "argv", ["recsys-mine", "runtime.malloc_mmap_threshold=5",
                                      f"hydra.run.dir={tmp_path}", "hydra.output_subdir=null"])
    _app.run_app("mine", lambda cfg: events.append("task"))
    assert events == [{"malloc_mmap_threshold": 5, "malloc_trim_threshold": 2**30}, "task"]


def test_every_app_config_composes_the_runtime_group() -> None:
    from hydra import compose, initialize_config_dir

    from recsys.cli._app import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for app in ("adjust", "campaign", "data", "evaluate", "export", "features", "mine",
                    "recommend", "train"):
            cfg = compose(config_name=app)
            assert cfg.runtime.malloc_mmap_threshold == 2**30, app
