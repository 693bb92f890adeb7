"""``index.device``: the CPU by default; ``cuda`` without a GPU-enabled faiss is a one-line
ConfigError, or with ``index.fallback=true`` a logged fallback to the same CPU index; on a GPU
with faiss-gpu the index searches there with the CPU results."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from recsys.errors import ConfigError
from recsys.retrieval.faiss_device import faiss_gpus
from recsys.retrieval.index import ItemIndex
from recsys.retrieval.index_spec import load_spec

needs_faiss_gpu = pytest.mark.skipif(faiss_gpus() == 0, reason="faiss without GPU support or no GPU")
no_faiss_gpu = pytest.mark.skipif(faiss_gpus() > 0, reason="faiss has a GPU here")


def vectors(n: int = 2000, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("config", ["flat", "ivf_flat", "ivf_pq", "hnsw"])
def test_index_configs_search_on_the_cpu_by_default(config: str) -> None:
    spec = load_spec(config)
    assert spec.device == "cpu" and spec.fallback is False


def test_bad_device_or_fallback_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"index\.device must be one of cpu, cuda, got 'tpu'"):
        load_spec("flat", device="tpu")
    with pytest.raises(ConfigError, match=r"index\.fallback must be true or false"):
        load_spec("flat", device="cuda", fallback="yes")


@no_faiss_gpu
def test_cuda_without_faiss_gpu_is_one_clear_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        ItemIndex.build(vectors(), load_spec("flat", device="cuda"), "dot")
    message = str(info.value)
    assert "\n" not in message and "index.device=cuda" in message and "index.fallback=true" in message
    assert "faiss-gpu" in message or "no GPU" in message


@no_faiss_gpu
def test_fallback_flag_builds_the_cpu_index_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    x, q = vectors(), vectors(50, seed=1)
    cpu = ItemIndex.build(x, load_spec("ivf_flat"), "dot")
    with caplog.at_level(logging.WARNING, logger="recsys.retrieval.faiss_device"):
        fell_back = ItemIndex.build(x, load_spec("ivf_flat", device="cuda", fallback=True), "dot")
    assert fell_back.device == "cpu" and "searching on the CPU" in caplog.text
    for a, b in zip(cpu.search(q, 10), fell_back.search(q, 10), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.cuda
@needs_faiss_gpu
@pytest.mark.parametrize("config", ["flat", "ivf_flat"])
def test_gpu_index_searches_like_the_cpu_one_and_serialises_to_cpu(config: str) -> None:
    x, q = vectors(20_000, 32), vectors(200, 32, seed=1)
    cpu = ItemIndex.build(x, load_spec(config, search_params={"nprobe": 8} if config != "flat" else {}), "dot")
    gpu = ItemIndex.build(x, load_spec(config, device="cuda", search_params=dict(cpu.params)), "dot")
    assert gpu.device == "cuda" and gpu.ntotal == cpu.ntotal
    (cs, ci), (gs, gi) = cpu.search(q, 10), gpu.search(q, 10)
    assert np.allclose(gs, cs, atol=1e-3)
    assert (gi == ci).mean() > 0.95  # near-equal scores may swap places across devices
    back = ItemIndex.from_bytes(gpu.to_bytes(), gpu.factory, gpu.params)
    assert back.device == "cpu" and isinstance(back.index, faiss.Index) and back.ntotal == gpu.ntotal


@no_faiss_gpu
def test_export_cli_with_index_device_cuda_stops_on_one_line_before_any_work(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    proc = subprocess.run([sys.executable, "-m", "recsys.cli.export", "model.kind=als", "index=flat",
                           "index.device=cuda", f"bundle_dir={bundle}", f"paths.output_dir={tmp_path}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "index.device=cuda" in lines[0] and "Traceback" not in proc.stderr
    assert not bundle.exists() and not (tmp_path / "hydra").exists()
