"""``cnnkit serve --detector auto --precision auto``: the server says what it chose, and still names
the enrolled person (a real server of its own, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.server import Server, make_key, start_server


@pytest.fixture(scope="module")
def auto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    db = str(tmp_path_factory.mktemp("serve-auto") / "serve.sqlite3")
    key = make_key(db, "enroll")
    logs = Path(tmp_path_factory.mktemp("serve-auto-logs"))
    running = start_server(db, logs, "--detector", "auto", "--precision", "auto")
    yield running, key
    running.stop()


def test_auto_choices_are_reported_and_identify_still_names(
    auto_server: tuple[Server, str], photos: dict[str, bytes]
) -> None:
    from cnnkit.face.detectors import CNN_AUTO_MAX_PIXELS
    from cnnkit.face.precision import resolve_precision

    server, key = auto_server
    chosen = resolve_precision("auto", "cpu")  # what this CPU affords: bf16, int8 or fp32
    ready = httpx.get(f"{server.url}/readyz", timeout=30).json()
    assert ready["precision"] == chosen
    assert ready["detector"].startswith("auto: cnn")  # CPU: the CNN on small images
    assert f"{CNN_AUTO_MAX_PIXELS:,}" in ready["detector"]
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=120) as api:
        info = api.get("/info", headers=headers).json()
        assert info["precision"] == chosen and info["precision_requested"] == "auto"
        assert info["detector"] == ready["detector"]
        pid = api.post("/persons", json={"name": "Grace"}, headers=headers).json()["id"]
        photo = {"file": ("g.png", photos["grace"])}
        r = api.post(f"/persons/{pid}/photos?upsample=0", files=photo, headers=headers)
        assert r.status_code == 201, r.text
        r = api.post(
            "/identify?upsample=0", files={"file": ("t.png", photos["two"])}, headers=headers
        )
        assert r.status_code == 200, r.text
        left, right = sorted(r.json()["faces"], key=lambda f: f["box"]["left"])
        assert left["name"] == "Grace" and right["name"] == "unknown"
    log = server.log.read_text()
    assert "encoder precision " + chosen in log
    # upsample=0 keeps these photos (at most 1024x600) under auto's limit: the CNN ran on them
    assert "face detector auto: using cnn" in log and "using hog" not in log
