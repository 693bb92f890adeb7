"""Torch device names from configuration (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from recsys.errors import ConfigError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; refuse ``cuda`` without a GPU.

    torch is imported here, on call, so that importing this module stays cheap."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}",
                          column="device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device=cuda but CUDA is not available", column="device")
    return device


GPU_ACCELERATORS = ("gpu", "cuda")


def check_trainer_devices(accelerator: str, devices: object, cuda_devices: int | None = None) -> None:
    """Refuse a GPU trainer (``trainer.accelerator=gpu|cuda``) that this machine cannot run,
    before Lightning builds it: no CUDA at all, or ``trainer.devices`` asking for more GPUs (a
    count) or other GPUs (a list of indices) than are present. ``auto``, ``cpu`` and
    ``devices=-1|auto`` are left to Lightning. ``cuda_devices`` defaults to the visible count."""
    if str(accelerator) not in GPU_ACCELERATORS:
        return
    if cuda_devices is None:
        import torch

        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cuda_devices == 0:
        raise ConfigError(f"trainer.accelerator={accelerator} needs CUDA, but no CUDA device is "
                          f"available on this machine; use trainer=cpu (or trainer=ddp for several "
                          f"CPU processes)", column="trainer.accelerator")
    wanted = _wanted_gpus(devices)
    if wanted is None:
        return
    count, highest = wanted
    if count > cuda_devices or highest >= cuda_devices:
        asked = f"GPU index {highest}" if highest >= count else f"{count} GPUs"
        raise ConfigError(f"trainer.devices={devices} asks for {asked} but this machine has "
                          f"{cuda_devices} CUDA device(s); set trainer.devices to at most "
                          f"{cuda_devices}", column="trainer.devices")


def _wanted_gpus(devices: object) -> tuple[int, int] | None:
    """(how many GPUs, highest index or -1) that ``trainer.devices`` names; None for all/auto."""
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return None
        if "," in text:
            devices = [int(d) for d in text.split(",") if d.strip()]
        elif text.lstrip("-").isdigit():
            devices = int(text)
        else:
            raise ConfigError(f"trainer.devices must be a count, a list of GPU indices or auto, got "
                              f"{devices!r}", column="trainer.devices")
    if isinstance(devices, bool):
        raise ConfigError(f"trainer.devices must be a count, got {devices!r}", column="trainer.devices")
    if isinstance(devices, int):
        return None if devices == -1 else (devices, -1)
    if isinstance(devices, Iterable):
        indices = [int(d) for d in devices]
        return (len(indices), max(indices, default=-1))
    raise ConfigError(f"trainer.devices must be a count, a list of GPU indices or auto, got "
                      f"{devices!r}", column="trainer.devices")
