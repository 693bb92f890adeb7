"""The HTTP service: FastAPI app over a :class:`~recsys.serving.state.ServingState`.

``POST /recommend``, ``GET /items/{item_id}/similar``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus text) and ``POST /admin/reload`` (bearer token from the environment
variable named by ``admin_token_env``). Index search, user encoding and rules run in a thread
pool of ``workers`` threads (FAISS and torch release the GIL), all reading the one bundle in
memory. User errors are 4xx with ``{"detail": message}``: unknown ids 404, a bundle refused on
reload 409, a body over ``max_body_bytes`` 413, anything else invalid 422.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from recsys.errors import BundleError, RecsysError
from recsys.serving import respond
from recsys.serving.body_limit import BodyLimit
from recsys.serving.metrics import ServiceMetrics
from recsys.serving.recommender import UnknownIdError
from recsys.serving.schemas import (
    ErrorResponse,
    Health,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
    SimilarResponse,
)
from recsys.serving.service import ServeSettings
from recsys.serving.state import ServingState

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 422)}


def validation_message(err: RequestValidationError) -> str:
    """One line naming each invalid field: ``body.k: Input should be ...; ...``."""
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
             for e in err.errors()]
    return "; ".join(parts) or "invalid request"


def status_of(err: RecsysError) -> int:
    """HTTP status of a user error."""
    if isinstance(err, UnknownIdError):
        return 404
    if isinstance(err, BundleError):
        return 409
    return 422


def create_app(state: ServingState, settings: ServeSettings,
               metrics: ServiceMetrics | None = None) -> FastAPI:
    """The app; the bundle is loaded at startup (``state.reload``) unless already loaded."""
    metrics = metrics or ServiceMetrics()
    state.on_change.append(metrics.bundle_changed)
    state.on_reload.append(lambda outcome: metrics.reloads.labels(outcome).inc())
    if state.ready:
        metrics.bundle_changed(state.current)
    pools: dict[str, ThreadPoolExecutor] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # requests run on `workers` threads; reloads on their own, so a slow load keeps them all
        pools["serve"] = ThreadPoolExecutor(settings.workers, thread_name_prefix="recsys-serve")
        pools["reload"] = ThreadPoolExecutor(1, thread_name_prefix="recsys-reload")
        try:
            if not state.ready:
                await run(state.reload, pool="reload")
            yield
        finally:
            for executor in pools.values():
                executor.shutdown(wait=True)

    app = FastAPI(title="recsys", summary="Recommendations over a serving bundle",
                  lifespan=lifespan, responses=ERRORS)
    app.state.serving = state
    app.state.metrics = metrics

    async def run(fn: Callable[..., T], *args: Any, pool: str = "serve") -> T:
        return await asyncio.get_running_loop().run_in_executor(pools[pool], partial(fn, *args))

    @app.exception_handler(RecsysError)
    async def _user_error(_: Request, err: RecsysError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=status_of(err))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(err)}, status_code=422)

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(req: Annotated[RecommendRequest, Body()]) -> Response:
        """Top-k items for a known user (``user_id``) or a new one (``new_user``), with rules
        (promotion, price, channel) and an additive explanation per item."""
        return await run(_json, respond.recommend, state.current, req, settings.candidates_k)

    @app.get("/items/{item_id}/similar", response_model=SimilarResponse)
    async def similar(item_id: Annotated[str, PathParam(min_length=1, max_length=200)],
                      k: Annotated[int, Query(ge=1, le=10_000)] = 10) -> Response:
        """The ``k`` items nearest to ``item_id`` in the bundle's index."""
        return await run(_json, respond.similar, state.current, item_id, k)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}})
    async def readyz(response: Response) -> Health:
        """A bundle is loaded and requests can be served."""
        if not state.ready:
            response.status_code = 503
            return Health(status="loading")
        return Health(status="ready", bundle_version=state.current.version)

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text: requests, latency histogram, bundle version, reloads."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", response_model=ReloadResponse,
              responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}})
    async def reload(body: ReloadRequest | None = None,
                     authorization: Annotated[str | None, Header()] = None) -> ReloadResponse:
        """Load a bundle (``bundle_dir``, default: the configured one) and swap it in; a bundle
        that fails its checks is refused (409) and the old one keeps serving."""
        _check_token(settings, authorization)
        path = body.bundle_dir if body is not None else None
        served = await run(state.reload, None if path is None else Path(path),
                           body is not None and body.allow_older, pool="reload")
        return ReloadResponse(bundle_dir=str(served.resolved), bundle_version=served.version)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics)
    return app


class Observe:
    """ASGI middleware counting each request by route template, method and status, and timing
    it (a plain ASGI wrapper: cheaper than an ``@app.middleware`` function)."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sent(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "unmatched"), str(scope.get("method")),
                                 status, time.perf_counter() - start)


def _json(fn: Callable[..., BaseModel], *args: Any) -> Response:
    """``fn``'s response model as JSON, serialised once in the worker (returning the model
    would have FastAPI validate it again and serialise it on the event loop)."""
    return Response(fn(*args).model_dump_json(), media_type="application/json")


def _check_token(settings: ServeSettings, authorization: str | None) -> None:
    token = settings.admin_token()
    if token is None:
        raise HTTPException(403, f"admin endpoints are off: set {settings.admin_token_env}")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "wrong or missing admin token",
                            headers={"WWW-Authenticate": "Bearer"})
