"""Where a FAISS index searches: ``index.device: cpu | cuda``. On ``cuda`` the built index is
cloned to the GPU (sharded over several GPUs, so a catalogue larger than one GPU fits); a faiss
without GPU support (``faiss-cpu``) or no visible GPU is a ConfigError, or with
``index.fallback: true`` a logged fallback to the CPU index."""

from __future__ import annotations

import logging
from typing import Any

import faiss

from recsys.errors import ConfigError

log = logging.getLogger(__name__)
DEVICES = ("cpu", "cuda")


def check_device(device: Any) -> str:
    """``device`` as given in ``index.device``, validated."""
    if str(device) not in DEVICES:
        raise ConfigError(f"index.device must be one of {', '.join(DEVICES)}, got {device!r}",
                          column="index.device")
    return str(device)


def faiss_gpus() -> int:
    """GPUs this faiss build can use (0 for faiss-cpu or without a visible GPU)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


def check_placement(device: str, fallback: bool) -> bool:
    """Whether an index for ``device`` can go to the GPU; raise the ConfigError of
    :func:`place_index` up front (before any work) when it cannot and ``fallback`` is off."""
    if check_device(device) == "cpu":
        return False
    if faiss_gpus() > 0:
        return True
    why = ("this faiss has no GPU support (faiss-cpu is installed; install faiss-gpu)"
           if not hasattr(faiss, "StandardGpuResources") else "faiss sees no GPU")
    if not fallback:
        raise ConfigError(f"index.device=cuda but {why}; set index.device=cpu, or "
                          f"index.fallback=true to fall back to the CPU index", column="index.device")
    log.warning("index.device=cuda: %s; searching on the CPU (index.fallback=true)", why)
    return False


def place_index(index: faiss.Index, device: str, fallback: bool) -> tuple[faiss.Index, str]:
    """``index`` on ``device`` and the device it ended on (``"cpu"`` after a fallback)."""
    if not check_placement(device, fallback):
        return index, "cpu"
    gpus = faiss_gpus()
    try:
        if gpus == 1:
            resources = faiss.StandardGpuResources()
            gpu_index: Any = faiss.index_cpu_to_gpu(resources, 0, index)
            gpu_index.referenced_objects = [resources]  # alive as long as the index
        else:  # one shard of the catalogue per GPU
            options = faiss.GpuMultipleClonerOptions()
            options.shard = True
            gpu_index = faiss.index_cpu_to_all_gpus(index, options)
    except RuntimeError as err:  # an index type FAISS cannot run on the GPU (HNSW, RFlat...)
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not fallback:
            raise ConfigError(f"index.device=cuda: FAISS cannot move this index to the GPU "
                              f"({message}); set index.device=cpu or index.fallback=true",
                              column="index.device") from None
        log.warning("index.device=cuda: %s; searching on the CPU (index.fallback=true)", message)
        return index, "cpu"
    return gpu_index, "cuda"


def to_cpu(index: faiss.Index, device: str) -> faiss.Index:
    """A CPU copy of an index placed by :func:`place_index` (for serialisation)."""
    return faiss.index_gpu_to_cpu(index) if device == "cuda" else index


def parameter_space(device: str) -> Any:
    """FAISS's search-parameter setter for an index on ``device``."""
    return faiss.GpuParameterSpace() if device == "cuda" else faiss.ParameterSpace()
