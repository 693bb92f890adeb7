"""Training on the synthetic world (conf/data/synthetic.yaml, small images that training does
not read): a short run learns, i.e. its best validation recall beats ranking by popularity."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from recsys.data.pipeline import build_dataset
from recsys.training.ranking import popularity_baseline
from recsys.training.train import train

CONF = str(Path(__file__).resolve().parents[2] / "recsys" / "conf")


@pytest.mark.slow
def test_short_run_on_the_synthetic_world_beats_popularity(tmp_path: Path) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        data_cfg = compose("data", overrides=[
            "data=synthetic", f"paths.output_dir={tmp_path}", "data.generator.image_size=32"])
        dataset = Path(build_dataset(data_cfg))
        cfg = compose("train", overrides=[
            f"dataset_dir={dataset}", f"paths.output_dir={tmp_path}", "torch_threads=1",
            "~callbacks.progress_bar", "trainer.max_epochs=30", "datamodule.batch_size=256",
            "test=false"])
    GlobalHydra.instance().clear()
    metrics, objects = train(cfg)
    dm = objects["datamodule"]
    popular = popularity_baseline(dm.tables, dm.targets["val"], k=20,
                                  exclude_history=objects["system"].exclude_history)
    best = float(objects["trainer"].checkpoint_callback.best_model_score)
    # the world is small (about 4 purchases per user): seed 42 reaches ~1.17x popularity
    assert best > 1.1 * popular["recall"], (best, popular)
    assert metrics["val/recall@20_cold"] >= 0.0 and metrics["val/users_cold"] > 0
