"""In-process checks of the app (TestClient): time-out, the upload spool, the API's OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.formparsers import MultiPartParser

from cnnkit.serve.app import create_app
from cnnkit.serve.config import ServeConfig
from cnnkit.serve.storage import open_storage
from tests.serve.conftest import is_problem


def _client(tmp_path: Path, **config) -> tuple[TestClient, dict[str, str]]:
    db = str(tmp_path / "app.sqlite3")
    storage = open_storage(db)
    _, key = storage.create_key("admin", "default")
    storage.close()
    return TestClient(create_app(ServeConfig(db=db, **config))), {"X-API-Key": key}


def test_inference_past_the_time_out_is_503(tmp_path: Path, photos: dict[str, bytes]) -> None:
    client, key = _client(tmp_path, request_timeout=0.001)
    with client:
        r = client.post("/api/v1/identify", files={"file": ("g.png", photos["grace"])}, headers=key)
        assert "time-out" in is_problem(r, 503, "timeout")["detail"]
        assert int(r.headers["Retry-After"]) >= 1
        assert client.get("/healthz").status_code == 200  # the loop was never blocked


def test_uploads_stay_in_memory(tmp_path: Path) -> None:
    create_app(ServeConfig(db=str(tmp_path / "x.sqlite3"), max_upload_bytes=20_000_000))
    assert MultiPartParser.spool_max_size > 20_000_000  # a file under the limit never spools


@pytest.mark.parametrize("limit", [1000])
def test_a_smaller_upload_limit(tmp_path: Path, photos: dict[str, bytes], limit: int) -> None:
    client, key = _client(tmp_path, max_upload_bytes=limit, load_models=False)
    with client:
        r = client.post("/api/v1/detect", files={"file": ("g.png", photos["grace"])}, headers=key)
        assert "0.001 MB" in is_problem(r, 413, "too-large")["detail"]


def test_browser_session_cookie_and_csrf(tmp_path: Path) -> None:
    from cnnkit.serve.sessions import COOKIE, CSRF_HEADER

    db = str(tmp_path / "s.sqlite3")
    app = create_app(ServeConfig(db=db, session_token="tok-123", load_models=False))
    with TestClient(app) as client:
        is_problem(client.get("/api/v1/session"), 401, "unauthorized")
        r = client.get("/?token=wrong", follow_redirects=False)
        is_problem(r, 401, "unauthorized")
        r = client.get("/?token=tok-123", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        me = client.get("/api/v1/session").json()  # the client keeps the cookie
        assert me["role"] == "admin" and me["gallery"] == "default" and me["csrf"]
        # Reads work with the cookie alone; writes need the CSRF token too.
        assert client.get("/api/v1/persons").status_code == 200
        r = client.post("/api/v1/persons", json={"name": "Ada"})
        assert CSRF_HEADER in is_problem(r, 403, "csrf")["detail"]
        r = client.post("/api/v1/persons", json={"name": "Ada"}, headers={CSRF_HEADER: "x"})
        is_problem(r, 403, "csrf")
        r = client.post("/api/v1/persons", json={"name": "Ada"}, headers={CSRF_HEADER: me["csrf"]})
        assert r.status_code == 201
        # The token works once.
        client.cookies.clear()
        r = client.post("/api/v1/session", json={"token": "tok-123"})
        assert "already used" in is_problem(r, 401, "unauthorized")["detail"]
        # A typed key signs in too.
        storage = open_storage(db)
        _, key = storage.create_key("query", "default")
        storage.close()
        r = client.post("/api/v1/session", json={"key": key})
        assert r.status_code == 200 and r.json()["role"] == "query"
        assert client.get("/api/v1/persons").json()["total"] == 1
        csrf = r.json()["csrf"]
        is_problem(client.delete("/api/v1/session"), 403, "csrf")  # sign-out is a write too
        assert client.delete("/api/v1/session", headers={CSRF_HEADER: csrf}).status_code == 204
        client.cookies.clear()
        is_problem(client.get("/api/v1/persons"), 401, "unauthorized")


def test_a_full_queue_maps_to_503_with_retry_after(tmp_path: Path) -> None:
    from fastapi import APIRouter

    from cnnkit.serve.problems import ServiceBusy

    app = create_app(ServeConfig(db=str(tmp_path / "q.sqlite3"), load_models=False))
    probe = APIRouter()

    @probe.get("/probe")
    async def _busy() -> None:
        raise ServiceBusy("the encoder queue is full (256 faces waiting)", retry_after=3)

    app.include_router(probe)
    with TestClient(app) as client:
        r = client.get("/probe")
        assert "queue is full" in is_problem(r, 503, "busy")["detail"]
        assert r.headers["Retry-After"] == "3"


def test_requests_beyond_max_pending_are_503_at_once(tmp_path: Path) -> None:
    client, key = _client(tmp_path, max_pending=0, load_models=False)
    with client:
        r = client.get("/api/v1/persons", headers=key)
        assert "waiting" in is_problem(r, 503, "busy")["detail"] and r.headers["Retry-After"]
