"""The web app's routes through a real cnnkit serve: answers, problems, and roles."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
from PIL import Image

from cnnkit.edges import sobel, vertical

from .conftest import Keys, is_problem, png

NOTES = [[10, 10, 10, 0, 0, 0]] * 6


def test_web_routes_need_a_key(api: httpx.Client, keys: Keys) -> None:
    body = {"input": NOTES, "kernel": vertical().tolist()}
    is_problem(api.post("/conv/explain", json=body), 401, "unauthorized")
    r = api.post("/conv/explain", json=body, headers=keys.headers("query"))
    assert r.status_code == 200 and r.json()["output"] == [[0, 30, 30, 0]] * 4
    assert r.json()["formula_h"] == "floor((6 + 2*0 - 3) / 1) + 1 = 4"


def test_conv_problems(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    ragged = {"input": [[1, 2, 3], [4]], "kernel": [[1]]}
    assert (
        "different lengths"
        in is_problem(api.post("/conv/explain", json=ragged, headers=h), 422, "invalid-input")[
            "detail"
        ]
    )
    small = {"input": [[1, 2], [3, 4]], "kernel": vertical().tolist()}
    assert (
        "does not fit"
        in is_problem(api.post("/conv/explain", json=small, headers=h), 422, "invalid-input")[
            "detail"
        ]
    )
    vol = {"input": [NOTES] * 3, "filters": [[vertical().tolist()] * 2], "p": "same"}
    assert (
        "3 channels"
        in is_problem(api.post("/conv/volume", json=vol, headers=h), 422, "invalid-input")["detail"]
    )
    kernels = api.get("/conv/kernels", headers=h).json()
    assert kernels["vertical"] == vertical().tolist() and kernels["sobel"] == sobel()[0].tolist()


def test_learn_recovers_the_target(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    r = api.post("/conv/learn", json={"target": "vertical", "steps": 300}, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["losses"]) == len(out["kernels"]) == len(out["biases"]) == 301
    assert np.abs(np.array(out["kernel"]) - vertical()).max() < 1e-3
    assert out["losses"][-1] < 1e-6 * out["losses"][0]
    is_problem(api.post("/conv/learn", json={"target": "sobelx"}, headers=h), 422, "invalid-input")


def test_samples_and_edge_views(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    names = [s["name"] for s in api.get("/samples", headers=h).json()["items"]]
    assert "camera" in names and "grace_hopper" in names
    r = api.get("/samples/camera", headers=h)
    assert r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (512, 512)
    is_problem(api.get("/samples/nope", headers=h), 404, "not-found")

    photo = np.zeros((40, 60, 3), np.uint8)
    photo[:, :30] = 200
    files = {"file": ("p.png", png(Image.fromarray(photo)), "image/png")}
    views = api.post("/edges/views", files=files, data={"kernel": "sobel"}, headers=h).json()
    for key in ("signed", "magnitude"):
        head, data = views[key].split(",", 1)
        assert head == "data:image/png;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (60, 40)
    bad = api.post("/edges/views", files=files, data={"kernel": "sobelx"}, headers=h)
    is_problem(bad, 422, "invalid-input")


def test_digit_problems(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    assert np.array(api.get("/digits/example?digit=4", headers=h).json()["image"]).shape == (8, 8)
    is_problem(api.get("/digits/example?digit=11", headers=h), 422, "invalid-input")
    junk = {"file": ("d.png", b"not an image", "image/png")}
    is_problem(api.post("/digits/classify", files=junk, headers=h), 415, "unsupported-media-type")


def test_style_job_over_http(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    img = png(Image.new("RGB", (48, 32), (120, 80, 40)))
    files = {"content": ("c.png", img, "image/png"), "style": ("s.png", img, "image/png")}
    big = api.post("/style/jobs", files=files, data={"size": 4000}, headers=h)
    assert "size must be between 16 and 512" in is_problem(big, 422, "invalid-input")["detail"]
    job = api.post("/style/jobs", files=files, data={"size": 32, "iterations": 4}, headers=h)
    assert job.status_code == 202, job.text
    jid = job.json()["id"]
    deadline = time.monotonic() + 120
    while api.get(f"/style/jobs/{jid}", headers=h).json()["state"] != "done":
        assert time.monotonic() < deadline, "the style job did not finish"
        time.sleep(0.2)
    result = api.get(f"/style/jobs/{jid}/result", headers=h)
    assert Image.open(io.BytesIO(result.content)).size == (32, 21)
    is_problem(api.get("/style/jobs/nope", headers=h), 404, "not-found")


def test_style_jobs_are_bounded(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    img = png(Image.new("RGB", (48, 32), (120, 80, 40)))
    files = {"content": ("c.png", img, "image/png"), "style": ("s.png", img, "image/png")}
    started = []
    try:
        for _ in range(4):  # the runner keeps at most 4 unfinished jobs
            r = api.post(
                "/style/jobs", files=files, data={"size": 32, "iterations": 2000}, headers=h
            )
            assert r.status_code == 202, r.text
            started.append(r.json()["id"])
        busy = api.post("/style/jobs", files=files, data={"size": 32, "iterations": 4}, headers=h)
        is_problem(busy, 503, "busy")
        assert busy.headers["retry-after"] == "5"
    finally:
        for jid in started:
            api.post(f"/style/jobs/{jid}/cancel", headers=h)
