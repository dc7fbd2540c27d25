"""The FastAPI application: ``create_app(ServeConfig)``.

Built in the lifespan and hung on ``app.state`` (no module globals): ``config``, ``storage``
(SQLite or PostgreSQL), ``replica`` (this process's in-memory index following the change
feed), ``encoder`` (the face encoder behind the micro-batching queue, loaded and warmed at
start-up, so the first request is as fast as the others), ``executor`` (inference threads, off
the event loop), ``metrics``. Routers live in ``routers/`` and are included under ``/api/v1``;
``/healthz``, ``/readyz`` and ``/metrics`` sit at the root, without a key.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from cnnkit import __version__
from cnnkit.errors import first_line
from cnnkit.face.detectors import describe_detector
from cnnkit.serve import metrics as metrics_mod
from cnnkit.serve import problems, uploads, webapp
from cnnkit.serve.batching import BatchingEncoder
from cnnkit.serve.config import ServeConfig
from cnnkit.serve.follow import start_follower
from cnnkit.serve.replica import ReplicaIndex
from cnnkit.serve.routers import ROUTER_MODULES
from cnnkit.serve.sessions import Sessions, set_cookie
from cnnkit.serve.storage import open_storage

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def load_models(state) -> None:
    """Load the face models and run each once, so no request pays for loading (readiness)."""
    import numpy as np

    from cnnkit.face.descriptors import get_pipeline
    from cnnkit.face.detection import detect, landmarks
    from cnnkit.face.facenet import facenet_for
    from cnnkit.face.pipeline import load_encoder

    config: ServeConfig = state.config
    encoder = load_encoder(None, precision=config.precision)
    blank = np.zeros((64, 64, 3), np.uint8)
    detect(blank)  # HOG: also what auto runs on large images
    if config.detector != "hog":
        detect(blank, 0, "cnn")  # reads dlib's MMOD weights
    landmarks(blank, (8, 56, 56, 8))
    encoder.embed(np.zeros((1, 150, 150, 3), np.uint8))
    if get_pipeline(None).fused:  # new galleries' descriptors need FaceNet too
        facenet_for(encoder).embed(np.zeros((1, 150, 150, 3), np.uint8))
    state.precision = encoder.precision
    log.info(
        "face detector %s, encoder precision %s (asked: %s)",
        config.detector,
        encoder.precision,
        config.precision,
    )
    m = state.metrics
    state.encoder = BatchingEncoder(
        encoder,
        max_batch=state.config.batch_size,
        max_wait=state.config.batch_wait_ms / 1000.0,
        max_queue=state.config.queue_size,
        on_batch=m.batch.observe,
        on_depth=m.queue.set,
        in_flight=lambda: state.in_flight,
    )


def base_url(config: ServeConfig) -> str:
    """``http://HOST:PORT`` to reach the service from this machine."""
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    return f"http://{host}:{config.port}"


def sign_in_url(config: ServeConfig) -> str:
    """The browser sign-in link: the base URL with the one-time session token."""
    return f"{base_url(config)}/?token={config.session_token}"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    config: ServeConfig = state.config
    state.ready = False
    state.storage = open_storage(config.db)
    state.replica = ReplicaIndex(state.storage, sync_interval=config.sync_interval)
    state.follower = start_follower(state.storage, state.replica)  # PostgreSQL: LISTEN/NOTIFY
    state.executor = ThreadPoolExecutor(config.threads, thread_name_prefix="cnnkit-infer")
    state.encoder = None
    state.precision = None
    try:
        if config.load_models:
            load_models(state)
        state.ready = True
        log.info("cnnkit serve ready: %s", state.storage.describe())
        if config.session_token and config.announce_url:
            # Printed, not logged: the user opens it (as Jupyter's URL with its token).
            print(f"cnnkit serve: open {sign_in_url(config)}", file=sys.stderr, flush=True)
        yield
    finally:
        state.ready = False
        if state.follower is not None:
            state.follower.stop()
        # Queued work is dropped, but work already running (e.g. a request whose client got
        # 503 at the time-out) finishes first: closing the encoder or the SQLite connections
        # under it crashed the process (a segfault inside sqlite3, seen in the test suite).
        state.executor.shutdown(wait=True, cancel_futures=True)
        if state.encoder is not None:
            state.encoder.close()
        state.storage.close()


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The service, configured by ``config`` (defaults: SQLite in the user data dir)."""
    config = config or ServeConfig()
    app = FastAPI(
        title="cnnkit",
        version=__version__,
        summary="Face verification and recognition (and the course's other CNNs) over HTTP",
        description="Every `/api/v1` call needs an `X-API-Key` header "
        "(`cnnkit serve keys create --role admin|enroll|query`). Errors are RFC 9457 problem "
        "details (`application/problem+json`).",
        lifespan=lifespan,
        docs_url=None,  # /docs is served below from the package's files, not a CDN
        redoc_url=None,
    )
    app.state.config = config
    app.state.metrics = metrics_mod.Metrics()
    app.state.encoder = None
    app.state.precision = None  # the encoder precision that runs, once the models are loaded
    app.state.ready = False
    app.state.in_flight = 0  # requests on the inference pool now (event-loop thread only)
    app.state.sessions = Sessions(config.session_token, config.gallery)
    problems.install(app)
    uploads.install(app, config.max_upload_bytes)
    metrics_mod.install(app, app.state.metrics, API_PREFIX)
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router, prefix=API_PREFIX)

    @app.middleware("http")
    async def _sign_in_link(request: Request, call_next):
        """``GET /?token=T``: the printed URL sets the session cookie, then shows ``/`` clean."""
        token = request.query_params.get("token")
        if request.url.path != "/" or request.method != "GET" or not token:
            return await call_next(request)
        try:
            _, secret = await run_in_threadpool(
                request.app.state.sessions.redeem, request.app.state.storage, token
            )
        except problems.ApiError as exc:
            return problems.problem(exc.status, exc.kind, exc.message, instance="/")
        response = RedirectResponse("/", status_code=303)
        set_cookie(response, secret, secure=request.url.scheme == "https")
        return response

    @app.get("/healthz", tags=["health"], summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Models loaded and database reachable")
    async def readyz(request: Request) -> JSONResponse:
        state = request.app.state
        if not state.ready:
            return problems.problem(
                503, "not-ready", "starting: the models are loading", headers={"Retry-After": "1"}
            )
        try:
            state.storage.ping()
        except Exception as exc:  # the database went away: not ready, say why
            return problems.problem(
                503,
                "database-unavailable",
                f"database unreachable ({getattr(exc, 'message', None) or first_line(exc)})",
                headers={"Retry-After": "1"},
            )
        return JSONResponse(
            {
                "status": "ready",
                "storage": state.storage.describe(),
                "detector": describe_detector(state.config.detector),
                "precision": state.precision,
            }
        )

    _offline_docs(app)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        return request.app.state.metrics.render()

    webapp.install(app)  # the browser app at /
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the files of the ``swagger-ui-bundle`` package: it works
    offline (FastAPI's default page loads its script and style from a CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # pragma: no cover - a declared dependency of the serve extra
        log.warning("swagger-ui-bundle is missing: /docs needs a network to load its page")
        swagger_ui_path = None
    assets = "/docs-assets"
    if swagger_ui_path is not None:
        app.mount(assets, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if swagger_ui_path is None:
            return get_swagger_ui_html(openapi_url=app.openapi_url or "", title="cnnkit API")
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "",
            title="cnnkit API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
        )


def app_from_env() -> FastAPI:
    """Factory for uvicorn's worker processes (``--workers N``): the config comes from the
    ``CNNKIT_SERVE_CONFIG`` environment variable that ``cnnkit serve`` sets."""
    return create_app(ServeConfig.from_env())
