"""The HTTP service in process (FastAPI's TestClient): every endpoint and each bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from http_fixtures import make_app, serve_settings

from recsys.evaluation.toy import ToyDataset
from recsys.serving import Recommender


@pytest.fixture(scope="module")
def client(bundle_dir: Path) -> Iterator[TestClient]:
    with TestClient(make_app(serve_settings(bundle_dir))) as c:
        yield c


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "bundle_version": None}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    client.post("/recommend", json={"user_id": "u0001", "k": 3})
    text = client.get("/metrics").text
    assert f'version="{ready.json()["bundle_version"]}"' in text
    assert 'recsys_http_requests_total{endpoint="/recommend",method="POST",status="200"}' in text
    assert 'recsys_http_request_seconds_bucket{endpoint="/recommend",le="0.025"}' in text


def test_known_user_gets_the_recommender_ranking_with_additive_explanations(
        client: TestClient, bundle_dir: Path, toy_ds: ToyDataset) -> None:
    rec = Recommender.load(bundle_dir)
    user = str(toy_ds.users["user_id"].iloc[4])
    body = client.post("/recommend", json={"user_id": user, "k": 5, "context": {
        "channel": "app", "time": "2024-05-01T10:00:00Z"}}).json()
    assert body["known_user"] and body["user_id"] == user and not body["rules_applied"]
    assert body["context"]["channel"] == "app"
    want = rec.recommend(user, k=5)
    assert [i["item_id"] for i in body["items"]] == want["item_id"].tolist()
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    for item, score in zip(body["items"], want["score"], strict=True):
        parts = item["explanation"]["contributions"]
        assert sum(parts.values()) == pytest.approx(item["retrieval_score"], abs=1e-9)
        assert item["retrieval_score"] == pytest.approx(score, abs=1e-5)
        assert parts["behaviour"] != 0 and parts["image"] != 0
    bought = set(rec.items["item_id"].to_numpy()[rec.history[rec.user_idx(user)].indices])
    assert not bought & {i["item_id"] for i in body["items"]}


def test_new_user_from_features_and_history(client: TestClient, toy_ds: ToyDataset) -> None:
    history = toy_ds.items["item_id"].astype(str).iloc[[3, 9]].tolist()
    req = {"new_user": {"features": {"age": 31, "gender": "f"}, "history": history}, "k": 6}
    body = client.post("/recommend", json=req).json()
    assert not body["known_user"] and len(body["items"]) == 6
    assert not set(history) & {i["item_id"] for i in body["items"]}
    behaviour = [i["explanation"]["contributions"]["behaviour"] for i in body["items"]]
    assert any(abs(b) > 1e-6 for b in behaviour)
    kept = client.post("/recommend", json={**req, "exclude_purchased": False}).json()
    assert len(kept["items"]) == 6


def test_unknown_user_is_cold_by_default(client: TestClient) -> None:
    body = client.post("/recommend", json={"user_id": "ghost", "k": 3}).json()
    assert not body["known_user"] and len(body["items"]) == 3
    assert all(i["explanation"]["contributions"]["behaviour"] == 0 for i in body["items"])


def test_unknown_user_is_404_when_configured(bundle_dir: Path) -> None:
    with TestClient(make_app(serve_settings(bundle_dir, unknown_user="error"))) as c:
        r = c.post("/recommend", json={"user_id": "ghost", "k": 3})
    assert r.status_code == 404 and "unknown user id 'ghost'" in r.json()["detail"]


def test_similar_items(client: TestClient, bundle_dir: Path) -> None:
    rec = Recommender.load(bundle_dir)
    item = str(rec.items["item_id"].iloc[7])
    body = client.get(f"/items/{item}/similar", params={"k": 4}).json()
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 4 and item not in ids
    v = rec.item_vectors
    want = np.argsort(-(v @ v[7]), kind="stable")
    assert ids == rec.items["item_id"].to_numpy()[[i for i in want if i != 7][:4]].tolist()
    assert client.get("/items/nope/similar").status_code == 404


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 422, "JSON decode error"),
    (b"{}", 422, "exactly one of user_id and new_user"),
    (b'{"k": 3}', 422, "exactly one of user_id and new_user"),
    (b'{"user_id": "u0001", "new_user": {}}', 422, "exactly one"),
    (b'{"user_id": "u0001", "k": 0}', 422, "greater than or equal to 1"),
    (b'{"user_id": "u0001", "k": -2}', 422, "greater than or equal to 1"),
    (b'{"user_id": "u0001", "k": 81}', 422, "between 1 and the catalogue size 80"),
    (b'{"user_id": "u0001", "k": "many"}', 422, "body.known.k: Input should be a valid integer"),
    (b'{"user_id": "u0001", "k": 2.5}', 422, "valid integer"),
    (b'{"user_id": "u0001", "context": {"time": 0}}', 422, "ISO 8601"),
    (b'[1, 2]', 422, "exactly one of user_id and new_user"),
    (b'{"user_id": "u0001", "colour": "red"}', 422, "Extra inputs"),
    (b'{"new_user": {"history": ["nope"]}}', 422, "history names unknown item id 'nope'"),
    (b'{"new_user": {"features": {"shoe_size": 9}}}', 422, "unknown user features"),
    (b'{"new_user": {"features": {"age": "old"}}}', 422, "numeric user feature"),
])
def test_bad_requests_are_4xx_with_a_message(client: TestClient, body: bytes, status: int,
                                              message: str) -> None:
    r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.text
    assert client.get("/healthz").status_code == 200


def test_huge_bodies_are_refused_with_413(client: TestClient) -> None:
    big = b'{"user_id": "' + b"x" * 10_000 + b'"}'
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 4096 bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streamed
        yield b'{"user_id": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = client.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.post("/recommend", json={"user_id": "u0001", "k": 2}).status_code == 200


def test_similar_bad_inputs(client: TestClient, toy_ds: ToyDataset) -> None:
    item = str(toy_ds.items["item_id"].iloc[0])
    assert client.get(f"/items/{item}/similar", params={"k": 0}).status_code == 422
    r = client.get(f"/items/{item}/similar", params={"k": 80})  # the item itself is excluded
    assert r.status_code == 422 and "catalogue size 79" in r.json()["detail"]


def test_concurrent_requests_share_one_bundle_in_a_bounded_pool(bundle_dir: Path,
                                                                toy_ds: ToyDataset) -> None:
    import asyncio
    import threading

    import httpx

    users = toy_ds.users["user_id"].astype(str).tolist()[:30]
    before = set(threading.enumerate())  # other apps' pools may be alive
    app = make_app(serve_settings(bundle_dir, workers=3))

    async def burst() -> list[list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://test") as c:
            served = app.state.serving.current
            replies = await asyncio.gather(*[c.post("/recommend", json={"user_id": u, "k": 5})
                                             for u in users * 2])
            assert app.state.serving.current is served  # one bundle object for all requests
            assert all(r.status_code == 200 for r in replies)
            pool = [t for t in set(threading.enumerate()) - before
                    if t.name.startswith("recsys-serve")]
            assert 1 <= len(pool) <= 3  # the configured workers, however many requests
            return [[i["item_id"] for i in r.json()["items"]] for r in replies]

    got = asyncio.run(burst())
    rec = Recommender.load(bundle_dir)
    want = [rec.recommend(u, k=5)["item_id"].tolist() for u in users]
    assert got == want * 2
