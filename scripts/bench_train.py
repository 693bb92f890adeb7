"""Benchmark of two-tower training: our Lightning loop against a minimal hand-written loop.

One process, the same processed dataset, model, optimizer and batches: ``recsys.training``'s
LightningModule driven by ``pl.Trainer`` (no callbacks, loggers or validation) and a bare
PyTorch loop over the same feature store and network, written out here for each training path of
``TwoTowerSystem.training_step`` (sampled softmax over in-batch and sampled negatives, full
softmax over the catalogue, user examples, the squared loss over the catalogue). One row per
configuration of the model: history encoder (mean, attention, transformer) and history source
(shared: the item tower's representation; separate: its own table), loss and example kind. Each
row prints samples/s of both sides and their ratio (goal >= 0.9), the peak resident memory of
each run (and its growth over the run's start) and whether one step of both sides gives the same
loss from the same seed (the bare loop runs the system's computation). With CUDA, a second
section trains with cached image features stored in bf16, bf16-mixed precision and a large
batch, and reports samples/s (goal >= 1M on an H100), peak GPU memory and the GPU utilisation
sampled during the run.

    python scripts/bench_train.py [--dataset-dir DIR] [--epochs 3] [--min-steps 30]
                                  [--batch 1024] [--threads 1] [--repeat 2]
                                  [--experiment id_only] [--configs default|all|list|NAME,...]
                                  [--skip-cpu]

Without ``--dataset-dir`` a synthetic world (timestamped) is generated into a temporary
directory. ``--configs list`` prints the configuration names.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import logging
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch
from _bench_common import GpuUtilisation, PeakRSS, rss_mib
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import Tensor, nn

from recsys.errors import RecsysError
from recsys.models.losses import log_expected_count
from recsys.models.two_tower import TwoTowerModel
from recsys.runtime import apply_runtime, default_runtime
from recsys.training.datamodule import RecsysDataModule
from recsys.training.optim import build_optimizer
from recsys.training.ranking import seen_matrix
from recsys.training.sampling import sample_negatives
from recsys.training.store import FeatureStore, history_vectors
from recsys.training.system import TwoTowerSystem
from recsys.training.train import build, build_datamodule, build_system

CONF = Path(__file__).resolve().parents[1] / "recsys" / "conf"
GOAL = 0.9


# ------------------------------------------------------------------ configurations
@dataclass(frozen=True)
class Setting:
    """One row: a loss (sampled, full, full-user: full softmax over user examples; mse-user: the
    full-catalogue squared loss over user examples between unnormalised towers; sampled-seq,
    full-seq: one-pass sequence examples), a history encoder and a history source, as config
    overrides."""

    loss: str
    encoder: str
    source: str

    @property
    def name(self) -> str:
        return f"{self.loss}:{self.encoder}:{self.source}"

    @property
    def unit(self) -> str:
        """What a sample is: a training positive, or a user (user and sequence examples)."""
        return "pos" if self.loss in ("sampled", "full") else "users"

    def overrides(self) -> list[str]:
        out = [f"model/history_encoder={self.encoder}",
               f"model.net.user_tower.history_source={self.source}"]
        if self.source == "separate":  # the SimpleX residual reads a shared history only
            out.append("model.net.user_tower.history_residual=false")
        # explicit either way: the experiment's own loss must not decide a row
        out.append("model/loss=sampled_softmax" if self.loss.startswith("sampled")
                   else "model/loss=full_mse" if self.loss == "mse-user"
                   else "model/loss=full_softmax")
        if self.loss in ("full-user", "mse-user"):
            out.append("datamodule.examples=user")
        if self.loss == "mse-user":  # dot-product towers, as experiment=ml1m_two_tower_mse
            out += ["model.net.item_tower.normalize=false", "model.net.temperature=1.0",
                    "model.net.learn_temperature=false"]
            if self.encoder == "mean":
                out.append("model.history_encoder.count_power=0.5")
        if self.loss.endswith("-seq"):  # 256 users a batch: up to 256 x history_len targets
            out += ["datamodule.examples=sequence", "datamodule.batch_size=256",
                    "model.history_encoder.position=chronological"]
        return out


ALL = [Setting(loss, encoder, source) for loss in ("sampled", "full", "full-user", "mse-user")
       for encoder in ("attention", "mean", "transformer") for source in ("separate", "shared")]
ALL += [Setting(loss, "transformer", source) for loss in ("sampled-seq", "full-seq")
        for source in ("separate", "shared")]
DEFAULT = ["sampled:attention:separate", "sampled:attention:shared", "sampled:mean:shared",
           "sampled:transformer:shared", "full:attention:separate", "full:attention:shared",
           "full-user:attention:separate", "mse-user:mean:separate", "sampled-seq:transformer:shared",
           "full-seq:transformer:shared"]


def settings(spec: str) -> list[Setting]:
    """``default``, ``all`` or comma-separated names of :data:`ALL`."""
    by_name = {s.name: s for s in ALL}
    names = {"default": DEFAULT, "all": list(by_name)}.get(spec, spec.split(","))
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)}; choose default, all or "
                         f"names of: {', '.join(by_name)}")
    return [by_name[n] for n in names]


# ------------------------------------------------------------------ data and config
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


# ------------------------------------------------------------------ measurement
class Clock:
    """Wall and process CPU seconds of each timed epoch; the rates are those of the fastest
    epoch (as timeit's minimum: on a shared machine other load only ever slows a stretch down).
    CPU time is the less disturbed of the two."""

    def __init__(self) -> None:
        self.epochs: list[tuple[int, float, float]] = []  # (samples, wall s, CPU s)
        self._w = self._c = 0.0

    def start(self) -> None:
        self._w, self._c = time.perf_counter(), time.process_time()

    def stop(self, samples: int) -> None:
        self.epochs.append((samples, time.perf_counter() - self._w,
                            time.process_time() - self._c))

    def rates(self) -> tuple[float, float]:
        """(samples per wall second, samples per CPU second) of the fastest epoch each."""
        return (max(n / w for n, w, _ in self.epochs),
                max(n / max(c, 1e-9) for n, _, c in self.epochs))


def _trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc), so that a run's resident memory starts
    from what is live, not from what an earlier run left in the allocator."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


class PeakMemory:
    """Peak memory of one run in MiB: resident set size sampled in a background thread on CPU,
    ``torch.cuda.max_memory_allocated`` on CUDA; ``growth`` is the peak minus the start."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.peak = self.growth = 0.0
        self._start = 0.0
        self._rss = PeakRSS()

    def __enter__(self) -> PeakMemory:
        _trim_heap()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated() / 2**20
        else:
            self._start = rss_mib()
            self._rss.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._rss.__exit__(*exc)
            self.peak = max(self._rss.peak, rss_mib())
        self.growth = self.peak - self._start


class Run(NamedTuple):
    wall: float  # samples/s
    cpu: float  # samples per CPU second
    peak: float  # MiB
    growth: float  # MiB over the run's start


def _best(a: Run | None, b: Run) -> Run:
    """Best rates over repeats (the machine may be shared) and the highest memory."""
    if a is None:
        return b
    return Run(max(a.wall, b.wall), max(a.cpu, b.cpu), max(a.peak, b.peak),
               max(a.growth, b.growth))


def _samples(batch: dict[str, Tensor]) -> int:
    key = next(k for k in ("pos", "users", "seq_users") if k in batch)
    return int(batch[key].shape[0])


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
        self._n += _samples(batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync(pl_module)
        if trainer.current_epoch > 0:
            self.clock.stop(self._n)


# ------------------------------------------------------------------ the two sides
def lightning_run(cfg: DictConfig, device: torch.device) -> Run:
    with PeakMemory(device) as mem:
        pl.seed_everything(int(cfg.seed), workers=True)
        dm = build_datamodule(cfg)
        system = build_system(cfg, dm)
        clock = EpochClock()
        trainer: pl.Trainer = build(cfg.trainer, callbacks=[clock], logger=False)
        trainer.fit(system, datamodule=dm)
        del trainer, system, dm
    return Run(*clock.clock.rates(), mem.peak, mem.growth)


Step = Callable[[dict[str, Tensor]], Tensor]


def hand_step(net: TwoTowerModel, store: FeatureStore, loss_fn: nn.Module, num_negatives: int,
              negative_distribution: str) -> Step:
    """The loss of one batch, as ``TwoTowerSystem.training_step`` computes it on one process
    (without its logging and NaN check): the same store calls and the same loss call."""
    full = bool(getattr(loss_fn, "full_catalogue", False))

    def catalogue(device: torch.device) -> tuple[Tensor, Tensor | None]:
        vectors = net.item(store.item_inputs(torch.arange(store.n_items, device=device)))
        return vectors, vectors if net.history_features is None else None

    def user_examples(batch: dict[str, Tensor]) -> Tensor:
        inputs, targets, history = store.split_users(batch["users"],
                                                     float(batch["keep_fraction"]))
        items, table = catalogue(batch["users"].device)
        u = net.user(inputs, history_vectors(net, store, inputs.hist_items, table))
        return loss_fn(u, items, targets, net.temperature, history)

    def full_softmax(batch: dict[str, Tensor]) -> Tensor:
        pos = batch["pos"]
        users, targets = store.train_inputs(pos)
        items, table = catalogue(pos.device)
        u = net.user(users, history_vectors(net, store, users.hist_items, table))
        others = seen_matrix(store.seq_users[pos], store.user_offsets, store.seq_items,
                             store.n_items)
        return loss_fn(u, items, targets, net.temperature, others)

    def sequence(batch: dict[str, Tensor]) -> Tensor:
        users = batch["seq_users"]
        inputs, rows, at, pos = store.sequence_targets(users, bool(batch["random_end"]))
        targets = store.seq_items[pos]
        if full:
            items, table = catalogue(users.device)
            u = net.user_sequence(inputs, history_vectors(net, store, inputs.hist_items, table),
                                  rows, at)
            others = seen_matrix(users[rows], store.user_offsets, store.seq_items,
                                 store.n_items)
            return loss_fn(u, items, targets, net.temperature, others)
        u = net.user_sequence(inputs, history_vectors(net, store, inputs.hist_items), rows, at)
        return sampled_loss(u, targets)

    def sampled(batch: dict[str, Tensor]) -> Tensor:
        users, items = store.train_inputs(batch["pos"])
        return sampled_loss(net.user(users, history_vectors(net, store, users.hist_items)),
                            items)

    def sampled_loss(u: Tensor, items: Tensor) -> Tensor:
        v = net.item(store.item_inputs(items))
        neg = neg_ids = neg_prob = None
        if num_negatives:
            neg_ids, neg_prob = sample_negatives(num_negatives, negative_distribution,
                                                 store.item_prob, store.item_cdf, None)
            neg = net.item(store.item_inputs(neg_ids))
        cand = items if neg_ids is None else torch.cat([items, neg_ids])
        logq = log_expected_count(store.item_prob[cand],
                                  None if neg_prob is None else neg_prob[cand], len(items),
                                  num_negatives)
        return loss_fn(u, v, items, net.temperature, logq, neg, neg_ids)

    def step(batch: dict[str, Tensor]) -> Tensor:
        if "users" in batch:
            return user_examples(batch)
        if "seq_users" in batch:
            return sequence(batch)
        return full_softmax(batch) if full else sampled(batch)

    return step


def _hand_parts(cfg: DictConfig, device: torch.device
                ) -> tuple[RecsysDataModule, TwoTowerSystem, Step]:
    """Datamodule, system (for its net, store and loss only) and the bare step on ``device``."""
    dm = build_datamodule(cfg)
    system = build_system(cfg, dm)
    net, store = system.net.to(device), system.store.to(device)
    step = hand_step(net, store, system.loss, int(cfg.model.system.num_negatives),
                     str(cfg.model.system.negative_distribution))
    return dm, system, step


def hand_run(cfg: DictConfig, device: torch.device, bf16: bool) -> Run:
    """The same model, data and optimizer in a bare loop (no logging, no NaN checks)."""
    with PeakMemory(device) as mem:
        pl.seed_everything(int(cfg.seed), workers=True)
        dm, system, step = _hand_parts(cfg, device)
        net = system.net
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
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = step(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                n += _samples(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if epoch > 0:
                clock.stop(n)
        del opt, loader, net, system, dm, step
    return Run(*clock.rates(), mem.peak, mem.growth)


def same_loss(cfg: DictConfig) -> bool:
    """Whether one training batch gives the system's ``training_step`` loss and the bare step's
    loss, bit for bit, from the same random state (same model, same batch)."""
    pl.seed_everything(int(cfg.seed), workers=True)
    dm, system, step = _hand_parts(cfg, torch.device("cpu"))
    system.train()
    batch = next(iter(dm.train_dataloader()))
    with warnings.catch_warnings():  # self.log without a trainer only warns
        warnings.simplefilter("ignore")
        torch.manual_seed(1)
        ours = system.training_step(batch, 0).detach()
    torch.manual_seed(1)
    ref = step(batch).detach()
    return bool(torch.equal(ours, ref))


# ------------------------------------------------------------------ report
def _mem(run: Run) -> str:
    return f"{run.peak:,.0f} (+{run.growth:,.0f})"


HEADER = (f"{'configuration (loss:encoder:source)':<36}{'unit':>6}{'steps':>6}{'hand/s':>9}"
          f"{'ours/s':>9}{'ratio':>7}{'CPU ratio':>10}{'hand MiB':>15}{'ours MiB':>15}"
          f"{'same loss':>10}")


def row(setting: Setting, steps: int, ours: Run, ref: Run, same: bool) -> str:
    return (f"{setting.name:<36}{setting.unit:>6}{steps:>6}{ref.wall:>9,.0f}{ours.wall:>9,.0f}"
            f"{ours.wall / ref.wall:>7.2f}{ours.cpu / ref.cpu:>10.2f}{_mem(ref):>15}"
            f"{_mem(ours):>15}{'yes' if same else 'NO':>10}")


def row_config(dataset: Path, work: Path, common: list[str], setting: Setting, epochs: int,
               min_steps: int) -> tuple[DictConfig, int]:
    """The row's config, with more epochs than ``epochs`` where an epoch has few batches (user
    examples), so that at least ``min_steps`` steps are timed; and the timed steps."""
    def compose_with(n: int) -> DictConfig:
        return config(dataset, work / "cpu",
                      [*common, *setting.overrides(), f"trainer.max_epochs={n}"])

    per_epoch = max(len(build_datamodule(compose_with(epochs)).train_dataloader()), 1)
    epochs = max(epochs, 2, 1 + math.ceil(min_steps / per_epoch))  # the first is warm-up
    return compose_with(epochs), per_epoch * (epochs - 1)


def cpu_rows(dataset: Path, work: Path, common: list[str], chosen: list[Setting],
             args: argparse.Namespace) -> None:
    print(HEADER, flush=True)
    cpu = torch.device("cpu")
    worst = worst_cpu = float("inf")
    for setting in chosen:
        try:
            cfg, steps = row_config(dataset, work, common, setting, args.epochs, args.min_steps)
            same = same_loss(cfg)
            ours: Run | None = None
            ref: Run | None = None
            # interleaved, in alternating order (allocator and cache state), best rates
            for i in range(args.repeat):
                if i % 2 == 0:
                    ours = _best(ours, lightning_run(cfg, cpu))
                    ref = _best(ref, hand_run(cfg, cpu, bf16=False))
                else:
                    ref = _best(ref, hand_run(cfg, cpu, bf16=False))
                    ours = _best(ours, lightning_run(cfg, cpu))
        except RecsysError as err:
            print(f"{setting.name:<36}skipped: {err}", flush=True)
            continue
        assert ours is not None and ref is not None
        worst, worst_cpu = min(worst, ours.wall / ref.wall), min(worst_cpu, ours.cpu / ref.cpu)
        print(row(setting, steps, ours, ref, same), flush=True)
    print(f"unit: pos = training positives, users = users a batch (user and sequence examples); "
          f"steps: timed optimizer steps per run (epochs after the first, at least --min-steps); "
          f"hand/s, ours/s: samples per wall second of the fastest timed epoch over all repeats; ratio = ours / "
          f"hand-written (goal >= {GOAL}), CPU ratio the same per process CPU second (fastest "
          f"epoch); MiB: peak resident set size of the run (+ its growth over the run's start), "
          f"highest over repeats; same loss: one step of both sides from one seed gives the same "
          f"loss. Lowest ratio: {worst:.2f} wall, {worst_cpu:.2f} CPU")


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
    ap.add_argument("--min-steps", type=int, default=30,
                    help="timed steps per run at least (more epochs where an epoch is short)")
    ap.add_argument("--experiment", default="id_only", help="conf/experiment of every row")
    ap.add_argument("--configs", default="default",
                    help="default, all, list, or comma-separated loss:encoder:source names")
    ap.add_argument("--cuda-batch", type=int, default=16384)
    ap.add_argument("--cuda-epochs", type=int, default=4)
    ap.add_argument("--skip-cpu", action="store_true", help="only the CUDA section")
    args = ap.parse_args()
    if args.configs == "list":
        print("\n".join(f"{s.name}{' (default)' if s.name in DEFAULT else ''}" for s in ALL))
        return
    chosen = settings(args.configs)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning vs torch, not ours
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        dataset = args.dataset_dir or synthetic_dataset(work / "data", args.users, args.items)
        common = [f"datamodule.batch_size={args.batch}", f"experiment={args.experiment}",
                  "model.scheduler=null"]
        tables = build_datamodule(config(dataset, work / "cpu", common)).tables
        assert tables is not None
        print(f"dataset {dataset}: {len(tables.seq_items):,} training positives, "
              f"{tables.schema.n_items:,} items, timestamped: {tables.timestamped}; "
              f"experiment={args.experiment}, batch {args.batch}, {args.epochs} epochs or more "
              f"(first one is warm-up), {args.threads} CPU thread(s), best of {args.repeat}",
              flush=True)
        del tables
        if not args.skip_cpu:
            cpu_rows(dataset, work, common, chosen, args)
        if not torch.cuda.is_available():
            print("CUDA section skipped: no CUDA device")
            return
        feats = write_random_features(Path(dataset), work / "features", dim=1280)
        gpu_cfg = config(dataset, work / "gpu", [
            "trainer=gpu", "experiment=images", f"datamodule.image_features_dir={feats}",
            f"datamodule.batch_size={args.cuda_batch}", f"trainer.max_epochs={args.cuda_epochs}",
            "model.image_dtype=bfloat16", "datamodule.pin_memory=true", "model.scheduler=null"])
        cuda = torch.device("cuda")
        with GpuUtilisation(interval=0.2) as util:
            gpu_ours = lightning_run(gpu_cfg, cuda)
        gpu_ref = hand_run(gpu_cfg, cuda, bf16=True)
        name = torch.cuda.get_device_name()
        print(f"CUDA ({name}), cached 1280-d image features in bf16, bf16-mixed, "
              f"batch {args.cuda_batch}")
        print(f"{'':<38}{'samples/s':>12}{'peak GPU MiB':>15}")
        print(f"{'hand-written PyTorch (reference)':<38}{gpu_ref.wall:>12,.0f}{gpu_ref.peak:>15,.0f}")
        print(f"{'recsys Lightning system (ours)':<38}{gpu_ours.wall:>12,.0f}"
              f"{gpu_ours.peak:>15,.0f}  (goal >= 1,000,000)")
        print(f"ratio ours / hand-written: {gpu_ours.wall / gpu_ref.wall:.2f}; "
              f"mean GPU utilisation during our run: {util.mean:.0f}%")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
