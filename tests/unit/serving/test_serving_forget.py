"""recsys-forget: a customer named by the original id leaves no id, pseudonym or row behind in
the dataset, mining outputs, plans, bundle and checkpoints; the service reloads without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from fastapi.testclient import TestClient
from http_fixtures import TOKEN_ENV, make_app, serve_settings
from omegaconf import DictConfig
from test_serving_online_rules import ExplainedStatic, _mining_world

from recsys.cli.forget import run_forget
from recsys.data import load_dataset
from recsys.data.privacy import pseudonymise
from recsys.errors import ConfigError, DataError
from recsys.mining import MiningConfig, run_mining
from recsys.retrieval.index_spec import load_spec
from recsys.retrieval.trained import USER_ID_TABLE, user_id_bucket
from recsys.serving import ExportSettings, export_bundle
from recsys.serving.candidates import write_candidates
from recsys.training.checkpoint import SIGNATURE_KEY

KEY = "test-erasure-key"
ORIGINAL = "u002"  # has purchases and a social image


def _pseudonymise_dataset(data: Path) -> None:
    """Store keyed pseudonyms in place of the ids, as recsys-data does."""
    for path in data.glob("*.parquet"):
        frame = pd.read_parquet(path)
        if "user_id" in frame.columns:
            frame["user_id"] = pseudonymise(frame["user_id"].astype(str), KEY, 16).astype(str)
            frame.to_parquet(path, index=False)


def _checkpoint(path: Path, fingerprint: str | None, rows: int = 16) -> None:
    torch.manual_seed(0)
    table = torch.randn(rows, 4)
    torch.save({"state_dict": {USER_ID_TABLE: table, "net.other": torch.ones(3)},
                "optimizer_states": [{"state": {0: {"exp_avg": table.clone() + 1}}}],
                "hyper_parameters": {SIGNATURE_KEY: {"data_fingerprint": fingerprint}}}, path)


def _image_features(root: Path, ds: Any) -> Path:
    """A features directory as recsys-features writes it (CSR by user over user_images rows)."""
    folder = root / f"{ds.manifest['name']}-{str(ds.manifest['data_fingerprint'])[:12]}" / "enc"
    folder.mkdir(parents=True)
    owner = ds.user_images["user_idx"].to_numpy(np.int64)
    np.save(folder / "user_image_user_idx.npy", owner)
    np.save(folder / "user_image_rows.npy", np.arange(len(owner)))
    np.save(folder / "user_image_features.npy", np.arange(len(owner) * 3, dtype=np.float32
                                                          ).reshape(-1, 3))
    np.save(folder / "user_image_offsets.npy",
            np.r_[0, np.cumsum(np.bincount(owner, minlength=len(ds.users)))])
    return folder


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Any]:
    mw = _mining_world()
    out = tmp_path / "outputs"
    data = Path(mw.build_tiny_dataset(out / "data" / "synthetic"))
    _pseudonymise_dataset(data)
    run_mining(data, out / "mining" / "synthetic", MiningConfig.from_cfg(mw.compose("mine").mining))
    ds = load_dataset(data)
    settings = ExportSettings(batch_size=16, history_splits=("train",), item_columns=None,
                              user_tower=False)
    bundle = export_bundle(ExplainedStatic(len(ds.users), len(ds.items)), ds, load_spec("flat"),
                           out / "bundles" / "synthetic", settings, {"t": 1})
    plans = out / "campaign" / "synthetic" / "c1"
    cands = write_candidates(bundle, data, 10, True, plans / "candidates.parquet")
    frame = pd.read_parquet(cands).merge(ds.users[["user_idx", "user_id"]], on="user_idx")
    frame.to_csv(plans / "plan.csv", index=False)
    _image_features(out / "features", ds)
    runs = out / "runs" / "r1" / "checkpoints"
    runs.mkdir(parents=True)
    _checkpoint(runs / "best.ckpt", ds.manifest.get("data_fingerprint"))
    _checkpoint(runs / "other.ckpt", "another-dataset")
    return {"out": out, "data": data, "bundle": bundle, "runs": runs,
            "pseudonym": str(pseudonymise(pd.Series([ORIGINAL]), KEY, 16).iloc[0]),
            "idx": int(ds.users.set_index("user_id").loc[
                str(pseudonymise(pd.Series([ORIGINAL]), KEY, 16).iloc[0]), "user_idx"])}


def _cfg(world: dict[str, Any], *extra: str) -> DictConfig:
    mw = _mining_world()
    return mw.compose("forget", [f"paths.output_dir={world['out']}", f"customer={ORIGINAL}",
                                 f"preprocess.privacy.key={KEY}", *extra])


def _leftovers(root: Path, world: dict[str, Any]) -> list[str]:
    """Every place under ``root`` that still names the customer or holds one of its rows."""
    ids = {ORIGINAL, world["pseudonym"]}
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        found += [f"{path}: bytes {i}" for i in ids if i.encode() in raw]
        if path.suffix in (".parquet", ".csv"):
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            for col in frame.columns:
                if frame[col].astype(str).isin(ids).any():
                    found.append(f"{path}: column {col}")
            if "user_idx" in frame.columns:
                mine = frame[frame["user_idx"] == world["idx"]]
                tombstone = path.name == "users.parquet" and len(mine) == 1 and \
                    mine["user_id"].iloc[0] == f"erased-{world['idx']}"
                if len(mine) and not tombstone:
                    found.append(f"{path}: {len(mine)} rows of user_idx {world['idx']}")
    return found


def test_nothing_of_the_customer_remains(world: dict[str, Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    before = _leftovers(world["out"], world)
    assert any("users.parquet" in f for f in before) and any("plan.csv" in f for f in before)
    assert any("mining" in f for f in before) and any("bundles" in f for f in before)
    monkeypatch.setenv(TOKEN_ENV, "tok")
    with TestClient(make_app(serve_settings(world["bundle"], unknown_user="error"))) as client:
        assert client.post("/recommend", json={"user_id": world["pseudonym"]}).status_code == 200
        ckpt_before = torch.load(world["runs"] / "best.ckpt", weights_only=True)
        report = run_forget(_cfg(world))
        assert _leftovers(world["out"], world) == []
        assert client.post("/admin/reload", headers={"Authorization": "Bearer tok"}).status_code == 200
        r = client.post("/recommend", json={"user_id": world["pseudonym"]})
        assert r.status_code == 404
    assert report.rows and report.bundles == [str(world["bundle"])]
    # social-image features: the customer's gone, the others' rows renumbered to the new table
    folder = next((world["out"] / "features").glob("*/enc"))
    owner, rows = np.load(folder / "user_image_user_idx.npy"), np.load(folder / "user_image_rows.npy")
    offsets, feats = np.load(folder / "user_image_offsets.npy"), np.load(folder / "user_image_features.npy")
    images = pd.read_parquet(world["data"] / "user_images.parquet")
    assert world["idx"] not in owner and len(owner) == len(feats) == len(images) >= 1
    assert images["user_idx"].to_numpy()[rows].tolist() == owner.tolist()
    assert offsets[-1] == len(owner) and offsets[world["idx"]] == offsets[world["idx"] + 1]
    # the bundle: vector zeroed, history emptied, checksums valid (the reload verified them)
    row = world["idx"]
    assert not np.load(world["bundle"] / "user_embeddings.npy")[row].any()
    assert sp.load_npz(world["bundle"] / "history.npz")[row].nnz == 0
    # the checkpoint of this dataset: the customer's id row reset, everything else unchanged
    after = torch.load(world["runs"] / "best.ckpt", weights_only=True)
    bucket = user_id_bucket(world["pseudonym"], 16)
    table, old = after["state_dict"][USER_ID_TABLE], ckpt_before["state_dict"][USER_ID_TABLE]
    assert not table[bucket].any() and not after["optimizer_states"][0]["state"][0]["exp_avg"][bucket].any()
    keep = [i for i in range(16) if i != bucket]
    assert torch.equal(table[keep], old[keep])
    other = torch.load(world["runs"] / "other.ckpt", weights_only=True)
    assert other["state_dict"][USER_ID_TABLE][bucket].any()  # another dataset's: untouched
    audit = (world["out"] / "erasure_audit.jsonl").read_text()
    assert ORIGINAL not in audit and world["pseudonym"] not in audit
    assert json.loads(audit)["checkpoint_rows_reset"] == {str(world["runs"] / "best.ckpt"): 1}
    with pytest.raises(DataError, match=f"unknown customer '{ORIGINAL}'"):
        run_forget(_cfg(world))  # already erased


def test_unknown_customer_and_demo_key(world: dict[str, Any]) -> None:
    with pytest.raises(DataError, match="unknown customer 'nobody'"):
        run_forget(_cfg(world, "customer=nobody"))
    with pytest.raises(ConfigError, match="built-in demo key"):
        run_forget(_cfg(world, "data=hm", "preprocess.privacy.key=recsys-demo-key",
                        f"dataset_dir={world['data']}"))
    assert not (world["out"] / "erasure_audit.jsonl").exists()


def test_cli_refuses_the_demo_key_for_real_data(world: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "recsys.cli.forget", f"paths.output_dir={world['out']}",
         f"customer={ORIGINAL}", "data=hm", "preprocess.privacy.key=recsys-demo-key"],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin", "HOME": "/tmp"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert "built-in demo key" in line and "'generic'" in line
    assert not (world["out"] / "erasure_audit.jsonl").exists()
