"""Hot reload: atomic swap behind a token, bad bundles refused while the old one serves, a moved
``current`` link picked up, all visible in /metrics."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from http_fixtures import TOKEN_ENV, copy_bundle, make_app, newer, serve_settings

from recsys.errors import BundleError
from recsys.serving.service import bundle_loader
from recsys.serving.state import ServingState, watch

AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture()
def client(bundle_dir: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    return TestClient(make_app(serve_settings(bundle_dir)))


def _version(c: TestClient) -> str:
    return str(c.get("/readyz").json()["bundle_version"])


def test_reload_swaps_in_a_newer_bundle(client: TestClient, bundle_dir: Path,
                                        tmp_path: Path) -> None:
    new = copy_bundle(bundle_dir, tmp_path / "new", newer)
    with client as c:
        before = _version(c)
        r = c.post("/admin/reload", json={"bundle_dir": str(new)}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["bundle_dir"] == str(new) and _version(c) != before
        assert c.post("/recommend", json={"user_id": "u0001", "k": 2}).status_code == 200
        metrics = c.get("/metrics").text
    assert 'recsys_bundle_reloads_total{outcome="ok"} 2.0' in metrics  # startup + this one
    assert f'path="{new}"' in metrics and f'path="{bundle_dir}"' not in metrics


def _corrupt(root: Path) -> None:
    with (root / "items.parquet").open("ab") as f:
        f.write(b"garbage")


@pytest.mark.parametrize(("make", "message"), [
    (lambda src, dst: dst, "bundle directory not found"),
    (lambda src, dst: dst.parent / ("x" * 300), "bundle directory unusable (File name too long)"),
    (lambda src, dst: _corrupt(copy_bundle(src, dst, newer)) or dst, "checksum mismatch"),
    (lambda src, dst: copy_bundle(src, dst, lambda m: m.update(format_version=2)),
     "bundle format version 2 is not supported"),
    (lambda src, dst: copy_bundle(src, dst, lambda m: m.update(package_version="9.0.0")),
     "incompatible with recsys"),
    (lambda src, dst: copy_bundle(src, dst, lambda m: m.update(created_at="2001-01-01")),
     "is older than the one served"),
])
def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
        client: TestClient, bundle_dir: Path, tmp_path: Path, make: object, message: str
) -> None:
    target = make(bundle_dir, tmp_path / "bad")  # type: ignore[operator]
    with client as c:
        before = _version(c)
        r = c.post("/admin/reload", json={"bundle_dir": str(target)}, headers=AUTH)
        assert r.status_code == 409 and message in r.json()["detail"], r.text
        assert _version(c) == before
        assert c.post("/recommend", json={"user_id": "u0001", "k": 2}).status_code == 200
        assert 'recsys_bundle_reloads_total{outcome="refused"} 1.0' in c.get("/metrics").text


def test_a_deliberate_rollback_to_an_older_bundle(client: TestClient, bundle_dir: Path,
                                                  tmp_path: Path) -> None:
    old = copy_bundle(bundle_dir, tmp_path / "old", lambda m: m.update(created_at="2001-01-01"))
    with client as c:
        r = c.post("/admin/reload", json={"bundle_dir": str(old), "allow_older": True},
                   headers=AUTH)
        assert r.status_code == 200 and r.json()["bundle_version"].startswith("2001-01-01")


def test_admin_token(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    with client as c:
        assert c.post("/admin/reload").status_code == 401
        r = c.post("/admin/reload", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "wrong or missing admin token" in r.json()["detail"]
        assert c.post("/admin/reload", headers=AUTH).status_code == 200  # the configured one
        monkeypatch.delenv(TOKEN_ENV)
        r = c.post("/admin/reload", headers=AUTH)
        assert r.status_code == 403 and TOKEN_ENV in r.json()["detail"]


def test_in_flight_requests_keep_their_bundle(bundle_dir: Path, tmp_path: Path) -> None:
    state = ServingState(bundle_loader(serve_settings(bundle_dir)), bundle_dir)
    old = state.reload()
    taken = state.current  # what a request in flight holds
    new = state.reload(copy_bundle(bundle_dir, tmp_path / "new", newer))
    assert state.current is new and taken is old and new is not old
    assert taken.recommender.recommend("u0001", k=3)["rank"].tolist() == [1, 2, 3]


def test_a_moved_current_link_is_picked_up(bundle_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(bundle_dir)
    state = ServingState(bundle_loader(serve_settings(link)), link)
    state.reload()
    stop = threading.Event()
    watch(state, 0.02, stop)
    try:
        bad = copy_bundle(bundle_dir, tmp_path / "bad", lambda m: m.update(format_version=1))
        _relink(link, bad)
        time.sleep(0.3)
        assert state.current.resolved == bundle_dir.resolve()  # refused, old one serves
        new = copy_bundle(bundle_dir, tmp_path / "new", newer)
        _relink(link, new)
        deadline = time.time() + 5
        while state.current.resolved != new.resolve() and time.time() < deadline:
            time.sleep(0.02)
        assert state.current.resolved == new.resolve()
    finally:
        stop.set()


def test_a_bundle_rewritten_in_place_is_picked_up(bundle_dir: Path, tmp_path: Path) -> None:
    served = copy_bundle(bundle_dir, tmp_path / "bundle")
    state = ServingState(bundle_loader(serve_settings(served)), served)
    first = state.reload()
    stop = threading.Event()
    watch(state, 0.02, stop)
    try:
        staged = copy_bundle(bundle_dir, tmp_path / ".staged", newer)
        os.rename(served, tmp_path / ".old")
        os.rename(staged, served)  # what an atomic rewrite (e.g. recsys-forget) does
        deadline = time.time() + 5
        while state.current is first and time.time() < deadline:
            time.sleep(0.02)
        assert state.current is not first and state.current.manifest["created_at"].startswith("2999")
    finally:
        stop.set()


def _relink(link: Path, target: Path) -> None:
    tmp = link.with_name(".current.tmp")
    tmp.symlink_to(target)
    os.replace(tmp, link)  # atomic, as a deploy would move it


def test_reload_without_a_loaded_bundle_is_an_error(tmp_path: Path) -> None:
    state = ServingState(bundle_loader(serve_settings(tmp_path / "none")), tmp_path / "none")
    assert not state.ready
    with pytest.raises(BundleError, match="no bundle is loaded"):
        _ = state.current
    with pytest.raises(BundleError, match="bundle directory not found"):
        state.reload()
