"""Benchmark of two-tower training: our Lightning loop against a minimal hand-written loop.

One process, the same processed dataset, model, optimizer and batches: ``recsys.training``'s
LightningModule driven by ``pl.Trainer`` (no callbacks, loggers or validation) and a bare PyTorch
loop over the same feature store and network. Prints samples/s of both and their ratio (goal
>= 0.85). With CUDA, a second section trains with cached image features stored in bf16,
bf16-mixed precision and a large batch, and reports samples/s (goal >= 1M on an H100) and the
GPU utilisation sampled during the run.

    python scripts/bench_train.py [--dataset-dir DIR] [--epochs 3] [--batch 1024] [--threads 1]
                                  [--repeat 2] [--skip-cpu]

Without ``--dataset-dir`` a synthetic world is generated into a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from _bench_common import GpuUtilisation
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from recsys.models.losses import log_expected_count
from recsys.runtime import apply_runtime, default_runtime
from recsys.training.optim import build_optimizer
from recsys.training.store import history_vectors
from recsys.training.train import build, build_datamodule, build_system

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"


def synthetic_dataset(work: Path, users: int, items: int) -> Path:
    """The synthetic world of conf/data/synthetic.yaml with tiny images (training reads none)."""
    from recsys.data.pipeline import build_dataset

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("data", overrides=[
            "data=synthetic", f"paths.output_dir={work}", f"data.generator.n_users={users}",
            f"data.generator.n_items={items}", "data.generator.image_size=32"])
    return Path(build_dataset(cfg))


def write_random_features(dataset_dir: Path, out: Path, dim: int) -> Path:
    """Random image features in the layout of recsys.images.features (throughput only)."""
    from recsys.data import load_dataset

    ds = load_dataset(dataset_dir)
    n_users, n_items = len(ds.users), len(ds.items)
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out.mkdir(parents=True)
    arrays = {
        "item_features": rng.standard_normal((n_items, dim), dtype=np.float32),
        "item_mask": np.ones(n_items, bool),
        "user_image_features": rng.standard_normal((int(offsets[-1]), dim), dtype=np.float32),
        "user_image_user_idx": np.repeat(np.arange(n_users), counts).astype(np.int64),
        "user_image_offsets": offsets, "user_image_rows": np.arange(int(offsets[-1])),
    }
    for name, value in arrays.items():
        np.save(out / f"{name}.npy", value)
    (out / "report.json").write_text(json.dumps({"encoder": "random", "dim": dim}))
    return out


def config(dataset_dir: Path, run_dir: Path, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[
            f"dataset_dir={dataset_dir}", f"paths.output_dir={run_dir}", "callbacks=none",
            "~logger", "test=false", "trainer.limit_val_batches=0",
            "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
            "+trainer.enable_checkpointing=false", *overrides])


class Clock:
    """Wall and process CPU seconds (CPU time is robust to other load on a shared machine)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.samples = 0
        self._w = self._c = 0.0

    def start(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def stop(self, samples: int) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c
        self.samples += samples

    def rates(self) -> tuple[float, float]:
        """(samples per wall second, samples per CPU second)."""
        return self.samples / self.wall, self.samples / self.cpu


class EpochClock(pl.Callback):
    """Times every training epoch after the first (warm-up)."""

    def __init__(self) -> None:
        self.clock, self._n = Clock(), 0

    def _sync(self, module: pl.LightningModule) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        self._n = 0
        self.clock.start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._n += int(batch["pos"].shape[0])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        if trainer.current_epoch > 0:
            self.clock.stop(self._n)


def lightning_rate(cfg: DictConfig) -> tuple[float, float]:
    pl.seed_everything(int(cfg.seed), workers=True)
    dm = build_datamodule(cfg)
    system = build_system(cfg, dm)
    clock = EpochClock()
    trainer: pl.Trainer = build(cfg.trainer, callbacks=[clock], logger=False)
    trainer.fit(system, datamodule=dm)
    return clock.clock.rates()


def hand_rate(cfg: DictConfig, device: torch.device, bf16: bool) -> tuple[float, float]:
    """The same model, data and optimizer in a bare loop (no logging, no NaN checks)."""
    pl.seed_everything(int(cfg.seed), workers=True)
    dm = build_datamodule(cfg)
    system = build_system(cfg, dm)
    net, store, loss_fn = system.net.to(device), system.store.to(device), system.loss
    opt = build_optimizer(net, lr=float(cfg.model.optimizer.lr),
                          weight_decay=float(cfg.model.optimizer.weight_decay))
    loader = dm.train_dataloader()
    net.train()
    clock = Clock()
    for epoch in range(int(cfg.trainer.max_epochs)):
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        clock.start()
        n = 0
        for batch in loader:
            pos = batch["pos"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                users, items = store.train_inputs(pos)
                u = net.user(users, history_vectors(net, store, users.hist_items))
                v = net.item(store.item_inputs(items))
                logq = log_expected_count(store.item_prob[items], None, len(items), 0)
                loss = loss_fn(u, v, items, net.temperature, logq)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += len(pos)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if epoch > 0:
            clock.stop(n)
    return clock.rates()


def _best(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return max(a[0], b[0]), max(a[1], b[1])


def main() -> None:
    apply_runtime(default_runtime())  # the apps' process settings (conf/runtime), both sides alike
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset-dir", type=Path, default=None)
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cuda-batch", type=int, default=16384)
    ap.add_argument("--cuda-epochs", type=int, default=4)
    ap.add_argument("--skip-cpu", action="store_true", help="only the CUDA section")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        dataset = args.dataset_dir or synthetic_dataset(work / "data", args.users, args.items)
        common = [f"trainer.max_epochs={args.epochs}", f"datamodule.batch_size={args.batch}",
                  "experiment=id_only", "model.scheduler=null"]
        cpu_cfg = config(dataset, work / "cpu", common)
        ours, ref = (0.0, 0.0), (0.0, 0.0)
        # interleaved, best of each: the machine may be shared
        for _ in range(0 if args.skip_cpu else args.repeat):
            ours = _best(ours, lightning_rate(cpu_cfg))
            ref = _best(ref, hand_rate(cpu_cfg, torch.device("cpu"), bf16=False))
        n_train = len(build_datamodule(cpu_cfg).tables.seq_items)  # type: ignore[union-attr]
        print(f"dataset {dataset}: {n_train:,} training positives; batch {args.batch}, "
              f"{args.epochs} epochs (first one is warm-up), {args.threads} CPU thread(s), "
              f"best of {args.repeat}")
        if not args.skip_cpu:
            print(f"{'CPU loop':<38}{'samples/s':>12}{'samples/CPU-s':>15}")
            print(f"{'hand-written PyTorch (reference)':<38}{ref[0]:>12,.0f}{ref[1]:>15,.0f}")
            print(f"{'recsys Lightning system (ours)':<38}{ours[0]:>12,.0f}{ours[1]:>15,.0f}")
            print(f"ratio ours / hand-written: {ours[0] / ref[0]:.2f} wall, {ours[1] / ref[1]:.2f} "
                  f"CPU time (goal >= 0.85)")
        if not torch.cuda.is_available():
            print("CUDA section skipped: no CUDA device")
            return
        feats = write_random_features(Path(dataset), work / "features", dim=1280)
        gpu_cfg = config(dataset, work / "gpu", [
            "trainer=gpu", "experiment=images", f"datamodule.image_features_dir={feats}",
            f"datamodule.batch_size={args.cuda_batch}", f"trainer.max_epochs={args.cuda_epochs}",
            "model.image_dtype=bfloat16", "datamodule.pin_memory=true", "model.scheduler=null"])
        with GpuUtilisation(interval=0.2) as util:
            gpu_ours = lightning_rate(gpu_cfg)[0]
        gpu_ref = hand_rate(gpu_cfg, torch.device("cuda"), bf16=True)[0]
        name = torch.cuda.get_device_name()
        print(f"CUDA ({name}), cached 1280-d image features in bf16, bf16-mixed, "
              f"batch {args.cuda_batch}")
        print(f"{'hand-written PyTorch (reference)':<38}{gpu_ref:>12,.0f}")
        print(f"{'recsys Lightning system (ours)':<38}{gpu_ours:>12,.0f}  (goal >= 1,000,000)")
        print(f"ratio ours / hand-written: {gpu_ours / gpu_ref:.2f}; "
              f"mean GPU utilisation during our run: {util.mean:.0f}%")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
