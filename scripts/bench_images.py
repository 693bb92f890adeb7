"""Benchmark of the image feature pipeline (EfficientNet-Lite0, 224 px, conf/features.yaml).

In one process, on the same H&M product JPEGs:

1. our pipeline (hash, decode + resize, normalise, CNN) against a raw CNN forward over
   pre-made, pre-normalised tensors, same backbone, resolution and batch size; interleaved
   batch by batch, each side's best time per batch kept (the machine is shared);
2. a first run through an empty feature cache against a second, fully cached run;
3. ``--full-hm``: every H&M image encoded through the persistent cache (``--fresh``: an
   empty temporary cache, i.e. a real first encode);
4. on CUDA only: images/s of EfficientNet-Lite0 and ResNet-50 at 224 px in bf16, raw forward and
   full pipeline, with the GPU utilisation sampled during the pipeline run.

``--only-gpu`` runs section 4 alone; ``--synthetic N`` uses N generated JPEG photos
(``--synthetic-size`` WxH) instead of the H&M sample, for a GPU machine without the data.

    python scripts/bench_images.py [--images 384] [--rounds 5] [--full-hm [--fresh]]
                                   [--only-gpu] [--synthetic 4096] [--synthetic-size 512x384]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _bench_common import GpuUtilisation
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.images.cache import FeatureCache
from recsys.images.encoders import ImageEncoder, build_encoder
from recsys.images.extract import ExtractSettings, encode_images, resolve_workers
from recsys.images.features import open_feature_cache
from recsys.images.hm_sample import default_hm_dir, hm_articles
from recsys.images.loading import load_image
from recsys.images.transforms import Preprocess, build_transform
from recsys.runtime import apply_runtime

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"


def load_cfg(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="features", overrides=overrides)


def settings_of(cfg: DictConfig) -> ExtractSettings:
    return ExtractSettings.from_config(as_dict(cfg, "features"))


def raw_forward_seconds(
    encoder: ImageEncoder, batches: list[torch.Tensor], device: str, bf16: bool
) -> float:
    """Seconds for the bare CNN over ready tensors (already on ``device``, channels_last)."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for x in batches:
            out = encoder(x)
        out.float().cpu()
        return time.perf_counter() - start


def premade_batches(
    root: Path, paths: list[str], pre: Preprocess, settings: ExtractSettings
) -> list[torch.Tensor]:
    images = [pre(load_image(root, p, settings.load)) for p in paths]
    return [
        torch.stack(images[i : i + settings.batch_size])
        .to(settings.device)
        .contiguous(memory_format=torch.channels_last)
        for i in range(0, len(images), settings.batch_size)
    ]


def cpu_vs_raw(root: Path, paths: list[str], cfg: DictConfig, rounds: int) -> None:
    """Batch by batch, interleaved: the raw forward of batch b, then our pipeline on the same
    64 files (one ``encode_images`` call each, so its per-call costs count too). Each side keeps
    its best time per batch over the rounds: noise from a shared machine comes in bursts
    longer than a batch, so per-batch minima filter it far better than whole-run minima."""
    settings = settings_of(cfg)
    encoder = build_encoder(cfg.image_encoder)
    pre = build_transform(cfg.image_encoder, train=False)
    encoder.to(settings.device).to(memory_format=torch.channels_last)
    batches = premade_batches(root, paths, pre, settings)
    size = settings.batch_size
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    threads = settings.torch_threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    raw_forward_seconds(encoder, batches[:1], settings.device, False)  # warm-up, both sides
    encode_images(root, chunks[0], encoder, pre, settings, None)
    raw_t: list[list[float]] = [[] for _ in chunks]
    pipe_t: list[list[float]] = [[] for _ in chunks]
    for _ in range(rounds):
        for b, (x, chunk) in enumerate(zip(batches, chunks, strict=True)):
            raw_t[b].append(raw_forward_seconds(encoder, [x], settings.device, False))
            start = time.perf_counter()
            result = encode_images(root, chunk, encoder, pre, settings, None)
            pipe_t[b].append(time.perf_counter() - start)
            assert result.ok.all() and result.encoded == len(chunk)
    n = len(paths)
    raw, ours = n / sum(map(min, raw_t)), n / sum(map(min, pipe_t))
    print(
        f"[1] {cfg.image_encoder.name} {cfg.image_encoder.image_size}px on {settings.device}, "
        f"{n} images, batch {size}, torch threads {threads}, "
        f"decode workers {settings.num_workers}, {rounds} interleaved rounds"
    )
    print(f"    raw CNN forward on pre-made tensors : {raw:8.1f} images/s  (best per batch)")
    print(f"    our pipeline (decode+resize+CNN)    : {ours:8.1f} images/s  (best per batch)")
    print(f"    ratio pipeline / raw                : {ours / raw:8.3f}  (target >= 0.9)")
    paired = statistics.median(
        a / b for ra, pa in zip(raw_t, pipe_t, strict=True) for a, b in zip(ra, pa, strict=True)
    )
    print(f"    median ratio of adjacent batches    : {paired:8.3f}")
    totals = [(n / sum(r[i] for r in raw_t), n / sum(p[i] for p in pipe_t)) for i in range(rounds)]
    print("    whole rounds raw / ours (images/s)  : "
          + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in totals))


def cached_vs_first(root: Path, paths: list[str], cfg: DictConfig) -> None:
    settings = settings_of(cfg)
    encoder = build_encoder(cfg.image_encoder)
    pre = build_transform(cfg.image_encoder, train=False)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp), "bench", encoder.out_dim)
        start = time.perf_counter()
        first = encode_images(root, paths, encoder, pre, settings, cache)
        t1 = time.perf_counter() - start
        start = time.perf_counter()
        second = encode_images(
            root, paths, encoder, pre, settings, FeatureCache(Path(tmp), "bench", encoder.out_dim)
        )
        t2 = time.perf_counter() - start
    assert (second.encoded, second.cached) == (0, first.encoded)
    assert (first.features == second.features).all()
    print(f"[2] feature cache, {len(paths)} images")
    print(f"    first run (empty cache)  : {t1:8.3f} s  encoded {first.encoded}")
    print(f"    second run (all cached)  : {t2:8.3f} s  cached {second.cached}")
    print(f"    speed-up                 : {t1 / t2:8.1f}x  (target >= 50x)")


def full_hm(root: Path, paths: list[str], cfg: DictConfig, fresh: bool) -> None:
    settings = settings_of(cfg)
    encoder = build_encoder(cfg.image_encoder)
    pre = build_transform(cfg.image_encoder, train=False)
    tmp = Path(tempfile.mkdtemp()) if fresh else None
    cache_dir = tmp or Path(cfg.cache.dir)
    cache = open_feature_cache(cfg, encoder, cache_dir)
    start = time.perf_counter()
    result = encode_images(root, paths, encoder, pre, settings, cache)
    seconds = time.perf_counter() - start
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"[3] whole H&M sample: {len(paths)} images, cache {cache_dir}")
    print(
        f"    encoded {result.encoded}, cached {result.cached}, failed {len(result.failures)} "
        f"in {seconds:.1f} s ({len(paths) / seconds:.1f} images/s) on {settings.device}"
    )


def gpu_section(root: Path, paths: list[str], workers: int) -> None:
    print(f"[4] CUDA: {torch.cuda.get_device_name()}, bf16 autocast, 224 px, {len(paths)} images")
    for encoder_name in ("efficientnet_lite0", "resnet50"):
        cfg = load_cfg(
            [
                f"image_encoder={encoder_name}",
                "device=cuda",
                "batch_size=256",
                f"num_workers={workers}",
                "amp_bf16=true",
            ]
        )
        settings = settings_of(cfg)
        encoder = build_encoder(cfg.image_encoder).to("cuda").to(memory_format=torch.channels_last)
        pre = build_transform(cfg.image_encoder, train=False)
        batches = premade_batches(root, paths[:2048], pre, settings)
        raw_forward_seconds(encoder, batches[:2], "cuda", True)
        t_raw = raw_forward_seconds(encoder, batches, "cuda", True)
        n_raw = sum(len(b) for b in batches)
        encode_images(root, paths[:512], encoder, pre, settings, None)  # warm-up
        with GpuUtilisation() as util:
            start = time.perf_counter()
            result = encode_images(root, paths, encoder, pre, settings, None)
            t_pipe = time.perf_counter() - start
        print(
            f"    {encoder_name:18s} raw forward {n_raw / t_raw:9.1f} images/s | pipeline "
            f"{result.encoded / t_pipe:8.1f} images/s ({workers} workers), "
            f"GPU utilisation {util.mean:5.1f}% (peak {max(util.samples, default=0):.0f}%)"
        )
    gpu_jpeg_section(root, paths, workers)


def gpu_jpeg_section(root: Path, paths: list[str], workers: int) -> None:
    """The Lite0 pipeline again with ``jpeg_decode=cuda``: workers only read the files, nvJPEG
    decodes each batch and the crop and resize run on the GPU."""
    cfg = load_cfg(["image_encoder=efficientnet_lite0", "device=cuda", "batch_size=256",
                    f"num_workers={workers}", "amp_bf16=true", "jpeg_decode=cuda"])
    settings = settings_of(cfg)
    encoder = build_encoder(cfg.image_encoder).to("cuda").to(memory_format=torch.channels_last)
    pre = build_transform(cfg.image_encoder, train=False)
    encode_images(root, paths[:512], encoder, pre, settings, None)  # warm-up
    with GpuUtilisation() as util:
        start = time.perf_counter()
        result = encode_images(root, paths, encoder, pre, settings, None)
        seconds = time.perf_counter() - start
    print(f"    efficientnet_lite0 nvJPEG pipeline {result.encoded / seconds:8.1f} images/s "
          f"({workers} workers read files), GPU utilisation {util.mean:5.1f}%")


def synthetic_photos(root: Path, n: int, size: tuple[int, int]) -> list[str]:
    """``n`` JPEGs of smooth random colour fields (quality 90) under ``root``; their paths."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "synthetic").mkdir(parents=True)
    w, h = size
    grid = np.stack(np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h)), -1)
    paths = []
    for i in range(n):
        a = rng.uniform(-3, 3, (2, 3))
        img = np.sin(grid @ a + rng.uniform(0, 6, 3)) * 110 + 128 + rng.normal(0, 6, (h, w, 3))
        rel = f"synthetic/{i:06d}.jpg"
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / rel, quality=90)
        paths.append(rel)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=384, help="images for sections 1-2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--full-hm", action="store_true", help="encode the whole H&M sample")
    parser.add_argument("--fresh", action="store_true", help="--full-hm into an empty cache")
    parser.add_argument("--hm-dir", type=Path, default=default_hm_dir())
    parser.add_argument("--only-gpu", action="store_true", help="section 4 alone")
    parser.add_argument("--synthetic", type=int, default=0, help="N generated JPEGs, not H&M")
    parser.add_argument("--synthetic-size", default="512x384", help="WxH of generated JPEGs")
    parser.add_argument("overrides", nargs="*", help="conf/features.yaml overrides")
    args = parser.parse_args()
    if args.synthetic:
        root = Path(tempfile.mkdtemp(prefix="bench_images_"))
        w, h = (int(v) for v in args.synthetic_size.split("x"))
        paths = synthetic_photos(root, args.synthetic, (w, h))
        print(f"{len(paths)} synthetic {w}x{h} JPEGs in {root}")
    elif not (args.hm_dir / "images").is_dir():
        sys.exit(f"H&M sample not found at {args.hm_dir} (set RECSYS_HM_DIR, or --synthetic N)")
    else:
        root = args.hm_dir / "images"
        paths = list(hm_articles(args.hm_dir)["image_path"])
    try:
        run_sections(args, root, paths)
    finally:
        if args.synthetic:
            shutil.rmtree(root, ignore_errors=True)


def run_sections(args: argparse.Namespace, root: Path, paths: list[str]) -> None:
    """Sections 1-3 (unless ``--only-gpu``), then 4 when CUDA is present."""
    cfg = load_cfg(["device=cpu", *args.overrides])
    apply_runtime(cfg.runtime)  # the app's process settings (both sides alike), overrides included
    subset = paths[:: max(1, len(paths) // args.images)][: args.images]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads available")
    if not args.only_gpu:
        cpu_vs_raw(root, subset, cfg, args.rounds)
        cached_vs_first(root, subset, cfg)
    if args.full_hm and not args.synthetic:
        full_hm(root, paths, cfg, args.fresh)
    if torch.cuda.is_available():
        gpu_section(root, paths, workers=resolve_workers("auto", "cuda", 0))
    else:
        print("[4] CUDA not available: GPU section skipped")


if __name__ == "__main__":
    main()
