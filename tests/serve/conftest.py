"""Fixtures of the API tests: photos, keys, and one real ``cnnkit serve`` per session.

``serve_db`` names the database the server uses; the PostgreSQL tests parametrise it to run the
same API tests against both backends.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.face import shipped
from tests.serve.server import Server, make_key, start_server


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    """PNG bytes: grace (+ flip, crop), astro, two (both side by side), noface (a brick wall)."""
    from cnnkit.io import sample_path

    g, a = shipped.grace(), shipped.astronaut()
    v = shipped.variants(g)
    return {
        "grace": png(g),
        "grace_flip": png(v["flip"]),
        "grace_crop": png(v["crop"]),
        "astro": png(a),
        "two": png(shipped.side_by_side(g, a)),
        "noface": png(Image.open(sample_path("brick")).convert("RGB")),
    }


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def serve_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The API tests' database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").create_database("serve_api"))
    return str(tmp_path_factory.mktemp("serve-db") / "serve.sqlite3")


@dataclass
class Keys:
    admin: str
    enroll: str
    query: str
    other_admin: str  # admin of gallery "other"

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": getattr(self, role)}


@pytest.fixture(scope="session")
def keys(serve_db: str) -> Keys:
    return Keys(
        admin=make_key(serve_db, "admin"),
        enroll=make_key(serve_db, "enroll"),
        query=make_key(serve_db, "query"),
        other_admin=make_key(serve_db, "admin", gallery="other"),
    )


@pytest.fixture(scope="session")
def server(serve_db: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real uvicorn process for the session, on a free loopback port."""
    running = start_server(serve_db, tmp_path_factory.mktemp("serve-logs"))
    yield running
    running.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
        yield client


@pytest.fixture
def new_person(api: httpx.Client, keys: Keys, request: pytest.FixtureRequest):
    """Create a uniquely named person in the default gallery; returns (id, name)."""
    made: list[int] = []

    def create(prefix: str = "p") -> tuple[int, str]:
        name = f"{prefix}-{request.node.name[-40:]}-{len(made)}"
        r = api.post("/persons", json={"name": name}, headers=keys.headers("enroll"))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        return r.json()["id"], name

    yield create
    for pid in made:
        api.delete(f"/persons/{pid}", headers=keys.headers("admin"))


def is_problem(response: httpx.Response, status: int, kind: str) -> dict:
    """Assert an RFC 9457 problem with this status and type; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:cnnkit:problem:{kind}"
    assert body["title"] and body["detail"] and "\n" not in body["detail"]
    return body


__all__ = ["Keys", "is_problem", "png"]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of the storage tests: an empty one of each backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "storage.sqlite3")


@pytest.fixture
def storage(storage_url: str):
    from cnnkit.serve.storage import open_storage

    opened = open_storage(storage_url)
    yield opened
    opened.close()
