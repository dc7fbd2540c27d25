"""Limits, errors, health, metrics, docs and the other capabilities, through a real server."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
from PIL import Image

from tests.serve.conftest import Keys, is_problem
from tests.serve.server import Server


def test_health_ready_docs_metrics(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
    page = httpx.get(f"{server.url}/docs").text
    assert "swagger" in page.lower() and "cdn" not in page  # offline: assets from the package
    assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page)
    assert len(assets) >= 2  # the script and the style sheet
    for asset in assets:
        assert httpx.get(f"{server.url}{asset}").status_code == 200, asset
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/api/v1/persons", "/api/v1/identify", "/api/v1/verify", "/api/v1/info"):
        assert path in spec["paths"]
    httpx.get(f"{server.url}/api/v1/persons/1")  # counted under its route template
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        "cnnkit_requests_total",
        "cnnkit_request_seconds_bucket",
        "cnnkit_encoder_batch_size_bucket",
        "cnnkit_encoder_queue_depth",
    ):
        assert name in text
    assert 'route="/readyz"' in text and 'route="/api/v1/persons/{person_id}"' in text


def test_upload_over_the_limit_is_413(api: httpx.Client, keys: Keys) -> None:
    big = b"\xff\xd8" + bytes(11 * 1024 * 1024)
    r = api.post("/identify", files={"file": ("big.jpg", big)}, headers=keys.headers("query"))
    assert "10 MB" in is_problem(r, 413, "too-large")["detail"]


def test_decompression_bomb_is_413(api: httpx.Client, keys: Keys) -> None:
    bomb = io.BytesIO()
    Image.new("1", (8000, 6000)).save(bomb, format="PNG")  # 48 Mpx in a few kB
    assert len(bomb.getvalue()) < 100_000
    r = api.post(
        "/detect", files={"file": ("bomb.png", bomb.getvalue())}, headers=keys.headers("query")
    )
    assert "pixels" in is_problem(r, 413, "too-large")["detail"]


def test_not_an_image_is_415_and_truncated_is_422(
    api: httpx.Client, keys: Keys, photos: dict[str, bytes]
) -> None:
    r = api.post(
        "/identify", files={"file": ("a.txt", b"hello, world")}, headers=keys.headers("query")
    )
    assert "a.txt" in is_problem(r, 415, "unsupported-media-type")["detail"]
    cut = photos["grace"][: len(photos["grace"]) // 2]
    r = api.post("/identify", files={"file": ("cut.png", cut)}, headers=keys.headers("query"))
    is_problem(r, 422, "unreadable-image")


def test_unknown_route_and_method(api: httpx.Client, server: Server, keys: Keys) -> None:
    is_problem(api.get("/nothing", headers=keys.headers("query")), 404, "not-found")
    r = httpx.put(f"{server.url}/api/v1/identify", headers=keys.headers("query"))
    is_problem(r, 405, "method-not-allowed")


def test_edges_png(api: httpx.Client, keys: Keys, photos: dict[str, bytes]) -> None:
    from cnnkit.edges import detect

    for kernel in ("sobel", "vertical"):
        r = api.post(
            "/edges",
            files={"file": ("g.png", photos["grace"])},
            data={"kernel": kernel},
            headers=keys.headers("query"),
        )
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(r.content))
        assert picture.size == Image.open(io.BytesIO(photos["grace"])).size
    flat = io.BytesIO()
    Image.new("RGB", (32, 32), (90, 90, 90)).save(flat, format="PNG")
    r = api.post(
        "/edges",
        files={"file": ("flat.png", flat.getvalue())},
        data={"kernel": "sobel"},
        headers=keys.headers("query"),
    )
    expected = detect(np.full((32, 32, 3), 90 / 255, np.float32), "sobel")
    assert np.asarray(Image.open(io.BytesIO(r.content))).max() == (
        0 if expected.max() == 0 else 255
    )
    r = api.post(
        "/edges",
        files={"file": ("g.png", photos["grace"])},
        data={"kernel": "sobelx"},
        headers=keys.headers("query"),
    )
    assert "sobel" in is_problem(r, 422, "invalid-input")["detail"]


def test_model_summary(api: httpx.Client, keys: Keys) -> None:
    names = api.get("/models", headers=keys.headers("query")).json()["items"]
    assert "vgg16" in names and "resnet50" in names
    vgg = api.get("/models/vgg16/summary", headers=keys.headers("query")).json()
    assert vgg["total_params"] == 138_357_544  # VGG-16's published parameter count
    assert vgg["rows"][0]["output"] == [64, 224, 224]
    r = api.get("/models/zzz/summary", headers=keys.headers("query"))
    assert "zzz" in is_problem(r, 404, "not-found")["detail"]
