"""encode_images: bad images never break a batch or reach the cache; the cache is incremental."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from imagefixtures import FAST, compose_features, write_photo

from recsys.config import as_dict
from recsys.errors import ImageError
from recsys.images.cache import FeatureCache
from recsys.images.encoders import ImageEncoder, build_encoder
from recsys.images.extract import EncodeResult, ExtractSettings, encode_images
from recsys.images.loading import load_image
from recsys.images.transforms import Preprocess, build_transform

GOOD = [f"items/p{i}.jpg" for i in range(6)]


class Pipeline:
    """An encoder + preprocessing + settings from conf/features.yaml with FAST overrides."""

    def __init__(self, *overrides: str) -> None:
        cfg = compose_features([*FAST, *overrides])
        self.settings = ExtractSettings.from_config(as_dict(cfg))
        self.encoder: ImageEncoder = build_encoder(cfg.image_encoder)
        self.preprocess: Preprocess = build_transform(cfg.image_encoder, train=False)

    def cache(self, root: Path) -> FeatureCache:
        return FeatureCache(root, "test-ns", self.encoder.out_dim)

    def run(self, root: Path, paths: list[str], cache: FeatureCache | None) -> EncodeResult:
        return encode_images(root, paths, self.encoder, self.preprocess, self.settings, cache)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline()


def _add_bad_files(root: Path) -> list[str]:
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "text.jpg").write_text("not an image at all\n" * 10)
    data = (root / GOOD[0]).read_bytes()
    (root / "bad" / "cut.jpg").write_bytes(data[: len(data) // 2])
    return ["bad/empty.jpg", "bad/text.jpg", "bad/cut.jpg", "bad/missing.jpg", "../escape.jpg"]


def test_pipeline_matches_direct_encoding(pipe: Pipeline, image_root: Path) -> None:
    result = pipe.run(image_root, GOOD, None)
    assert result.ok.all() and result.encoded == 6 and result.cached == 0
    direct = [pipe.preprocess(load_image(image_root, p, pipe.settings.load)) for p in GOOD]
    with torch.inference_mode():
        expected = pipe.encoder(torch.stack(direct)).numpy()
    assert np.allclose(result.features, expected, atol=1e-4)
    assert np.linalg.matrix_rank(result.features) > 1  # distinct images, distinct features


def test_bad_images_become_counted_placeholders_and_are_never_cached(
    pipe: Pipeline, image_root: Path, tmp_path: Path
) -> None:
    bad = _add_bad_files(image_root)
    write_photo(image_root.parent / "escape.jpg", seed=99)
    paths = [GOOD[0], bad[0], GOOD[1], bad[1], bad[2], GOOD[2], bad[3], bad[4]]
    cache = pipe.cache(tmp_path / "cache")
    result = pipe.run(image_root, paths, cache)
    assert result.ok.tolist() == [True, False, True, False, False, True, False, False]
    assert not result.features[~result.ok].any()
    assert np.abs(result.features[result.ok]).sum(axis=1).min() > 0
    assert result.failed_by_reason() == {
        "corrupt": 1,
        "empty": 1,
        "missing": 1,
        "not_image": 1,
        "outside_root": 1,
    }
    assert {f.file for f in result.failures} == set(bad)
    assert len(FeatureCache(tmp_path / "cache", "test-ns", pipe.encoder.out_dim)) == 3
    again = pipe.run(image_root, paths, cache)
    assert again.cached == 3 and again.encoded == 0 and len(again.failures) == 5


def test_error_mode_raises_an_image_error_naming_the_file(image_root: Path, tmp_path: Path) -> None:
    strict = Pipeline("on_bad_image=error")
    bad = _add_bad_files(image_root)
    cache = strict.cache(tmp_path / "cache")
    with pytest.raises(ImageError, match=r"cut\.jpg"):
        strict.run(image_root, [GOOD[0], bad[2], GOOD[1]], cache)
    with pytest.raises(ImageError, match=r"missing\.jpg"):
        strict.run(image_root, [GOOD[0], bad[3]], cache)
    assert len(FeatureCache(tmp_path / "cache", "test-ns", strict.encoder.out_dim)) <= 2


def test_cache_hit_miss_and_incremental_encoding(
    pipe: Pipeline, image_root: Path, tmp_path: Path
) -> None:
    cache = pipe.cache(tmp_path / "cache")
    first = pipe.run(image_root, GOOD, cache)
    assert (first.encoded, first.cached) == (6, 0)
    second = pipe.run(image_root, GOOD, FeatureCache(tmp_path / "cache", "test-ns", 576))
    assert (second.encoded, second.cached) == (0, 6)
    assert np.array_equal(first.features, second.features)
    write_photo(image_root / "items" / "p6.jpg", seed=6)
    third = pipe.run(image_root, [*GOOD, "items/p6.jpg"], cache)
    assert (third.encoded, third.cached) == (1, 6)
    assert np.array_equal(third.features[:6], first.features)
    # An edited file has a new content hash: it is encoded again, not served stale.
    write_photo(image_root / GOOD[0], seed=42)
    fourth = pipe.run(image_root, GOOD, cache)
    assert (fourth.encoded, fourth.cached) == (1, 5)
    assert not np.allclose(fourth.features[0], first.features[0])


def test_identical_files_are_encoded_once(pipe: Pipeline, image_root: Path) -> None:
    (image_root / "copy.jpg").write_bytes((image_root / GOOD[3]).read_bytes())
    result = pipe.run(image_root, [GOOD[3], "copy.jpg", GOOD[3]], None)
    assert result.encoded == 1 and result.ok.all()
    assert np.array_equal(result.features[0], result.features[1])


def test_extraction_is_reproducible_and_workers_agree(image_root: Path, tmp_path: Path) -> None:
    inline = Pipeline()
    workers = Pipeline("num_workers=2", "batch_size=3")
    a = inline.run(image_root, GOOD, inline.cache(tmp_path / "a"))
    b = Pipeline().run(image_root, GOOD, None)
    c = workers.run(image_root, GOOD, workers.cache(tmp_path / "c"))
    assert inline.encoder.encoder_id == workers.encoder.encoder_id
    assert np.array_equal(a.features, b.features)
    assert np.allclose(a.features, c.features, atol=1e-5)


def test_bad_images_in_worker_processes(image_root: Path, tmp_path: Path) -> None:
    bad = _add_bad_files(image_root)
    paths = [GOOD[0], bad[2], GOOD[1], bad[1]]
    lenient = Pipeline("num_workers=2", "batch_size=2")
    result = lenient.run(image_root, paths, None)
    assert result.ok.tolist() == [True, False, True, False]
    assert result.failed_by_reason() == {"corrupt": 1, "not_image": 1}
    strict = Pipeline("num_workers=2", "batch_size=2", "on_bad_image=error")
    with pytest.raises(ImageError, match=r"cut\.jpg"):
        strict.run(image_root, paths, None)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_features_match_cpu(image_root: Path) -> None:
    cpu = Pipeline().run(image_root, GOOD, None)
    gpu = Pipeline("device=cuda", "amp_bf16=true", "num_workers=1").run(image_root, GOOD, None)
    assert gpu.ok.all()
    a, b = cpu.features, gpu.features
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.98


def test_auto_workers_leave_the_cnn_its_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.errors import ConfigError
    from recsys.images.extract import resolve_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(16)))
    assert resolve_workers("auto", "cpu", 0) == 0  # the CNN takes every core: decode inline
    assert resolve_workers("auto", "cpu", 14) == 2
    assert resolve_workers("auto", "cpu", 4) == 4  # capped
    assert resolve_workers("auto", "cuda", 0) == 8
    assert resolve_workers(3, "cpu", 0) == 3
    with pytest.raises(ConfigError, match="num_workers"):
        resolve_workers("many", "cpu", 0)



def test_encoder_is_put_in_eval_mode_and_channels_last_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, rel in enumerate(GOOD[:2]):
        write_photo(tmp_path / rel, seed=i)
    pipe = Pipeline()
    pipe.encoder.train()
    first = pipe.run(tmp_path, GOOD[:2], None)
    assert not any(m.training for m in pipe.encoder.modules())
    conv = next(p for p in pipe.encoder.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    moves: list[object] = []
    monkeypatch.setattr(type(pipe.encoder), "to", lambda self, *a, **k: moves.append(a) or self)
    again = pipe.run(tmp_path, GOOD[:2], None)
    assert moves == [] and np.array_equal(first.features, again.features)
