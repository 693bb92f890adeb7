"""Process runtime settings: glibc malloc thresholds from conf/runtime, applied by every app."""

from __future__ import annotations

import sys

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


def test_every_app_config_applies_the_runtime_group() -> None:
    from hydra import compose, initialize_config_dir

    from recsys.cli._app import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for app in ("adjust", "campaign", "data", "evaluate", "export", "features", "mine",
                    "recommend", "train"):
            cfg = compose(config_name=app)
            assert cfg.runtime.malloc_mmap_threshold == 2**30, app
