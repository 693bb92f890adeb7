"""Batched feature extraction: hash files, reuse cached rows, decode misses in DataLoader workers
and run the CNN on CPU (channels_last, inference mode) or CUDA (bf16 autocast).

A bad image never breaks a batch: the worker returns its failure reason instead of a tensor,
the batch is encoded without it, and (``on_bad_image=placeholder``) its row stays zero and
``ok`` false, or (``on_bad_image=error``) the :class:`BadImageError` naming it is raised after
the good rows computed so far are flushed to the cache. Failed images are never cached.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from recsys.devices import resolve_device
from recsys.errors import ConfigError
from recsys.images.cache import FeatureCache, content_hash
from recsys.images.encoders import ImageEncoder
from recsys.images.jpeg_device import DeviceJpegDecoder, device_decodable, resolve_jpeg_decode
from recsys.images.loading import BadImageError, LoadSettings, decode_image, read_image_bytes
from recsys.images.transforms import Preprocess

BAD_IMAGE_MODES: tuple[str, ...] = ("error", "placeholder")


@dataclass(frozen=True)
class ExtractSettings:
    """Runtime knobs of one extraction (all from ``conf/features.yaml``)."""

    batch_size: int
    num_workers: int
    device: str
    torch_threads: int
    amp_bf16: bool
    channels_last: bool
    on_bad_image: str
    hash_threads: int
    shard_size: int
    load: LoadSettings
    device_jpeg: bool = False  # JPEGs decoded on ``device`` in batches (recsys.images.jpeg_device)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ExtractSettings:
        mode = str(cfg["on_bad_image"])
        if mode not in BAD_IMAGE_MODES:
            raise ConfigError(
                f"on_bad_image must be one of {BAD_IMAGE_MODES}, got {mode!r}",
                column="on_bad_image",
            )
        device = resolve_device(str(cfg["device"]))
        torch_threads = int(cfg["torch_threads"])
        workers = resolve_workers(cfg["num_workers"], device, torch_threads)
        if int(cfg["batch_size"]) < 1 or workers < 0:
            raise ConfigError("batch_size must be >= 1 and num_workers >= 0", column="batch_size")
        return cls(
            batch_size=int(cfg["batch_size"]),
            num_workers=workers,
            device=device,
            torch_threads=torch_threads,
            amp_bf16=bool(cfg["amp_bf16"]),
            channels_last=bool(cfg["channels_last"]),
            on_bad_image=mode,
            hash_threads=max(1, int(cfg["hash_threads"])),
            shard_size=max(1, int(cfg["cache"]["shard_size"])),
            load=LoadSettings.from_config(cfg["loading"]),
            device_jpeg=resolve_jpeg_decode(str(cfg.get("jpeg_decode", "cpu")), device),
        )


def resolve_workers(value: Any, device: str, torch_threads: int) -> int:
    """``auto``: on CUDA, all cores but one (at most 8) decode; on CPU, only the cores the CNN
    threads leave free (at most 4), since a worker on a core the CNN uses slows both down."""
    if str(value) != "auto":
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"num_workers must be auto or an integer, got {value!r}", column="num_workers") from None
    cores = usable_cores()
    if device.startswith("cuda"):
        return max(1, min(8, cores - 1))
    return max(0, min(4, cores - cnn_threads(torch_threads)))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def cnn_threads(torch_threads: int) -> int:
    """Threads of the CNN forward on CPU: ``torch_threads``, or every usable core when 0."""
    return torch_threads if torch_threads > 0 else usable_cores()


@dataclass(frozen=True)
class Failure:
    """One image that could not be used."""

    file: str
    reason: str
    message: str


@dataclass
class EncodeResult:
    """Features aligned to the requested paths; rows of failed images are zero."""

    features: np.ndarray
    ok: np.ndarray
    failures: list[Failure] = field(default_factory=list)
    encoded: int = 0
    cached: int = 0

    def failed_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.failures:
            counts[f.reason] = counts.get(f.reason, 0) + 1
        return dict(sorted(counts.items()))


class _DecodeDataset(Dataset["_Item"]):
    """Item ``i``: its uint8 pixels (or, with ``device_jpeg``, the bytes of a JPEG the device
    decodes) and content hash, or why it failed."""

    def __init__(
        self, root: Path, paths: Sequence[str], preprocess: Preprocess, load: LoadSettings,
        device_jpeg: bool = False,
    ) -> None:
        self.root, self.paths, self.preprocess, self.load = root, list(paths), preprocess, load
        self.device_jpeg = device_jpeg

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> _Item:
        try:
            path, data = read_image_bytes(self.root, self.paths[i], self.load)
            if self.device_jpeg and device_decodable(data, self.load.max_pixels):
                jpeg = torch.frombuffer(bytearray(data), dtype=torch.uint8)
                return _Item(i, None, content_hash(data), jpeg=jpeg)
            image = decode_image(data, str(path), self.load, self.preprocess.draft_size)
            return _Item(i, self.preprocess.pixels(image), content_hash(data))
        except BadImageError as err:
            return _Item(i, None, "", (err.reason, err.detail, err.file or self.paths[i]))
        except Exception as err:  # a transform failing on odd data must not kill the batch
            return _Item(i, None, "", ("corrupt", repr(err), str(self.root / self.paths[i])))


@dataclass
class _Item:
    """Picklable worker output; ``error`` is (reason, detail, file)."""

    index: int
    pixels: Tensor | None
    key: str
    error: tuple[str, str, str] | None = None
    jpeg: Tensor | None = None


@dataclass
class _Batch:
    index: list[int]
    images: Tensor | None
    keys: list[str]
    failed: list[tuple[int, tuple[str, str, str]]]
    jpegs: list[_Item] = field(default_factory=list)  # decoded on the device

    def pin_memory(self) -> _Batch:
        """Called by the DataLoader (``pin_memory=True``) for page-locked CUDA copies."""
        if self.images is not None:
            self.images = self.images.pin_memory()
        return self


def _collate(items: list[_Item]) -> _Batch:
    good = [it for it in items if it.pixels is not None]
    return _Batch(
        index=[it.index for it in good],
        images=torch.stack([it.pixels for it in good if it.pixels is not None]) if good else None,
        keys=[it.key for it in good],
        failed=[(it.index, it.error) for it in items if it.error is not None],
        jpegs=[it for it in items if it.jpeg is not None],
    )


def _worker_init(_: int) -> None:
    """One thread per decode worker process, for torch and OpenCV alike (the workers are the
    parallelism; nested pools would oversubscribe the cores)."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def hash_files(
    root: Path, paths: Sequence[str], settings: ExtractSettings
) -> list[str | BadImageError]:
    """Content hash of each file, or the error that prevented reading it (threaded I/O)."""

    def one(rel: str) -> str | BadImageError:
        try:
            return content_hash(read_image_bytes(root, rel, settings.load)[1])
        except BadImageError as err:
            return err

    if settings.hash_threads == 1:  # local disks: threads only add GIL hand-offs
        return [one(rel) for rel in paths]
    with ThreadPoolExecutor(settings.hash_threads) as pool:
        return list(pool.map(one, paths))


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(cnn_threads(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def encode_images(
    root: Path,
    paths: Sequence[str],
    encoder: ImageEncoder,
    preprocess: Preprocess,
    settings: ExtractSettings,
    cache: FeatureCache | None = None,
) -> EncodeResult:
    """Features ``[len(paths), encoder.out_dim]`` for image files relative to ``root``.

    Identical files (same content hash) are encoded once; cached keys are not re-encoded.
    The encoder is moved to ``settings.device`` (and channels_last) in place.
    """
    result = EncodeResult(
        features=np.zeros((len(paths), encoder.out_dim), dtype=np.float32),
        ok=np.zeros(len(paths), dtype=bool),
    )
    unique = list(dict.fromkeys(paths))
    key_of: dict[str, str] = {}
    for rel, hashed in zip(unique, hash_files(root, unique, settings), strict=True):
        if isinstance(hashed, BadImageError):
            if settings.on_bad_image == "error":
                raise hashed
            result.failures.append(Failure(rel, hashed.reason, str(hashed)))
        else:
            key_of[rel] = hashed
    known = _cached_keys(cache, key_of.values())
    todo = list({k: rel for rel, k in key_of.items() if k not in known}.values())
    features, failures, decoded = _run(root, todo, encoder, preprocess, settings, cache)
    key_of |= decoded  # a file edited since hashing is stored under its new content hash
    failed_keys = {key_of[f.file]: f for f in failures}
    if cache is not None and known:
        ordered = sorted(known)
        features.update(zip(ordered, cache.get(ordered), strict=True))
    for rel, key in key_of.items():
        if key in failed_keys:
            first = failed_keys[key]
            result.failures.append(Failure(rel, first.reason, first.message))
    for row, rel in enumerate(paths):
        found = key_of.get(rel)
        if found is not None and found in features:
            result.features[row] = features[found]
            result.ok[row] = True
    result.encoded, result.cached = len(features) - len(known), len(known)
    return result


def _cached_keys(cache: FeatureCache | None, keys: Any) -> set[str]:
    return set() if cache is None else {k for k in keys if k in cache}


def _run(
    root: Path,
    paths: list[str],
    encoder: ImageEncoder,
    preprocess: Preprocess,
    settings: ExtractSettings,
    cache: FeatureCache | None,
) -> tuple[dict[str, np.ndarray], list[Failure], dict[str, str]]:
    """Decode + encode ``paths``; return {content hash: feature}, the failures and
    {path: content hash of the bytes actually decoded}."""
    out: dict[str, np.ndarray] = {}
    failures: list[Failure] = []
    decoded: dict[str, str] = {}
    if not paths:
        return out, failures, decoded
    cuda = settings.device.startswith("cuda")
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    _prepare(encoder, settings.device, fmt)
    decoder = _device_decoder(preprocess, settings)
    dataset = _DecodeDataset(root, paths, preprocess, settings.load, decoder is not None)
    loader = _batches(dataset, settings, cuda)
    pending: list[tuple[str, np.ndarray]] = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and settings.amp_bf16)
    try:
        with _torch_threads(settings.torch_threads), torch.inference_mode(), autocast:
            for batch in loader:
                pixels, index, keys = _batch_pixels(batch, decoder, root, paths,
                                                   settings.device, cuda)
                for i, (reason, detail, file) in batch.failed:
                    error = BadImageError(reason, detail, file=file)
                    if settings.on_bad_image == "error":
                        raise error
                    failures.append(Failure(paths[i], error.reason, str(error)))
                if pixels is None:
                    continue
                x = preprocess.normalize(pixels).contiguous(memory_format=fmt)
                feats = encoder(x).float().cpu().numpy()
                for i, key, row in zip(index, keys, feats, strict=True):
                    decoded[paths[i]] = key
                    out[key] = row
                    pending.append((key, row))
                if cache is not None and len(pending) >= settings.shard_size:
                    _flush(cache, pending)
    finally:
        if cache is not None:
            _flush(cache, pending)
    return out, failures, decoded


def _device_decoder(preprocess: Preprocess, settings: ExtractSettings) -> DeviceJpegDecoder | None:
    if not settings.device_jpeg:
        return None
    if preprocess.eval_crop is None:
        raise ConfigError("jpeg_decode on the device needs the evaluation preprocessing "
                          "(resize and centre crop)", column="jpeg_decode")
    return DeviceJpegDecoder(*preprocess.eval_crop, settings.device)


def _batch_pixels(batch: _Batch, decoder: DeviceJpegDecoder | None, root: Path,
                  paths: Sequence[str], device: str, cuda: bool) -> tuple[Tensor | None, list[int], list[str]]:
    """The batch's pixels on ``device`` (CPU-decoded ones, then device-decoded JPEGs) with
    their rows and keys; JPEGs the device cannot decode join ``batch.failed``."""
    parts = [] if batch.images is None else [batch.images.to(device, non_blocking=cuda)]
    index, keys = list(batch.index), list(batch.keys)
    if batch.jpegs:
        assert decoder is not None
        decoded = decoder([it.jpeg for it in batch.jpegs if it.jpeg is not None])
        for item, out in zip(batch.jpegs, decoded, strict=True):
            if isinstance(out, str):
                batch.failed.append((item.index, ("corrupt", f"cannot decode: {out}",
                                                  str(root / paths[item.index]))))
            else:
                parts.append(out.unsqueeze(0))
                index.append(item.index)
                keys.append(item.key)
    return (torch.cat(parts) if parts else None), index, keys


def _prepare(encoder: ImageEncoder, device: str, fmt: torch.memory_format) -> None:
    """Eval mode on ``device`` in ``fmt``, in place; skipped where already so (walking every
    module and parameter costs ~6 ms a call, which small incremental calls would feel)."""
    if any(m.training for m in encoder.modules()):
        encoder.eval()
    target = torch.device(device)
    conv = next((p for p in encoder.parameters() if p.dim() == 4), None)
    if (
        conv is None
        or conv.device.type != target.type
        or (target.index is not None and conv.device.index != target.index)
        or not conv.is_contiguous(memory_format=fmt)
    ):
        encoder.to(target).to(memory_format=fmt)


def _batches(dataset: _DecodeDataset, settings: ExtractSettings, cuda: bool) -> Iterable[_Batch]:
    """Decoded batches: DataLoader worker processes, or inline threads when ``num_workers=0``."""
    if not settings.num_workers:
        return _threaded_batches(dataset, settings)
    return DataLoader(dataset, batch_size=settings.batch_size, num_workers=settings.num_workers,
                      collate_fn=_collate, worker_init_fn=_worker_init, pin_memory=cuda,
                      prefetch_factor=4)


def _threaded_batches(dataset: _DecodeDataset, settings: ExtractSettings) -> Iterator[_Batch]:
    """Inline decoding (``num_workers=0``), each batch spread over a thread per core: PIL decodes
    and resizes without the GIL, so the cores the CNN uses in turn also share the decoding."""
    n, size = len(dataset), settings.batch_size
    with ThreadPoolExecutor(usable_cores()) as pool:
        for start in range(0, n, size):
            yield _collate(list(pool.map(dataset.__getitem__, range(start, min(start + size, n)))))


def _flush(cache: FeatureCache, pending: list[tuple[str, np.ndarray]]) -> None:
    if pending:
        cache.put([k for k, _ in pending], np.stack([v for _, v in pending]))
        pending.clear()
