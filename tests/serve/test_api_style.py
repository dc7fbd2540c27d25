"""The Style tab's jobs through a real cnnkit serve: the fast result comes first (an image of the
job's size, before any optimisation step), fast-only jobs and built-in styles, and the method and
style choices refused as RFC 9457 problems that name the option."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
from PIL import Image

from cnnkit.io import sample_path

from .conftest import Keys, is_problem


def sample_files(style: bool = True) -> dict:
    files = {"content": ("c.jpg", sample_path("chelsea").read_bytes(), "image/jpeg")}
    if style:
        files["style"] = ("s.jpg", sample_path("coffee").read_bytes(), "image/jpeg")
    return files


def image_of(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))


def chelsea_at(longest: int) -> tuple[int, int]:
    w, h = Image.open(sample_path("chelsea")).size
    s = longest / max(w, h)
    return round(h * s), round(w * s)  # (H, W)


def test_the_fast_result_comes_first_then_gatys_continues(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    data = {"size": 64, "iterations": 2000}  # stopped below: only the order matters
    job = api.post("/style/jobs", files=sample_files(), data=data, headers=h)
    assert job.status_code == 202, job.text
    jid = job.json()["id"]
    assert job.json()["method"] == "refine"  # the default
    try:
        seen = []
        deadline = time.monotonic() + 60
        while True:
            st = api.get(f"/style/jobs/{jid}", headers=h).json()
            seen.append(st)
            if st["preview_iteration"] >= 5:  # an image of the optimisation's own
                break
            assert st["state"] in ("queued", "running"), st
            assert time.monotonic() < deadline, "the optimisation did not start"
            time.sleep(0.02)
        # every status that shows optimisation progress already had the fast result
        assert all(s["has_fast"] for s in seen if s["iteration"] > 0)
        assert any(s["has_fast"] and s["iteration"] == 0 for s in seen), "fast came late"
        assert 0 < st["fast_seconds"] < 5 and st["total"] == 2000 and st["note"] == ""
        fast = image_of(api.get(f"/style/jobs/{jid}/fast", headers=h))
        assert fast.shape == (*chelsea_at(64), 3)
        content = np.asarray(Image.open(sample_path("chelsea")).resize(fast.shape[1::-1]))
        assert np.abs(fast.astype(float) - content).mean() > 10  # painted, not the content
    finally:
        api.post(f"/style/jobs/{jid}/cancel", headers=h)
    done = api.get(f"/style/jobs/{jid}", headers=h).json()
    deadline = time.monotonic() + 30
    while done["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        done = api.get(f"/style/jobs/{jid}", headers=h).json()
    assert done["state"] == "cancelled"
    result = image_of(api.get(f"/style/jobs/{jid}/result", headers=h))
    assert result.shape == fast.shape
    assert 0 < np.abs(result.astype(float) - fast).mean() < 40  # optimised from it, not redone


def wait_done(api: httpx.Client, h: dict, jid: str) -> dict:
    deadline = time.monotonic() + 60
    while (st := api.get(f"/style/jobs/{jid}", headers=h).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    return st


def test_fast_only_and_a_built_in_style(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    options = api.get("/style/jobs/options", headers=h).json()
    assert options["builtin_styles"] == list(range(26)) and "fast" in options["methods"]
    images = []
    for files, data in (
        (sample_files(), {"method": "fast", "size": 96}),
        (sample_files(style=False), {"method": "fast", "style_id": 7, "size": 96}),
    ):
        r = api.post("/style/jobs", files=files, data=data, headers=h)
        assert r.status_code == 202, r.text
        st = wait_done(api, h, r.json()["id"])
        assert st["state"] == "done" and st["iteration"] == st["total"] == 1, st
        result = image_of(api.get(f"/style/jobs/{st['id']}/result", headers=h))
        fast = image_of(api.get(f"/style/jobs/{st['id']}/fast", headers=h))
        assert np.array_equal(result, fast) and result.shape == (*chelsea_at(96), 3)
        images.append(result)
    assert np.abs(images[0].astype(float) - images[1]).mean() > 5  # two different styles


def test_method_and_style_problems_name_the_option(api: httpx.Client, keys: Keys) -> None:
    h = keys.headers("query")
    cases = [
        (sample_files(), {"method": "slow"}, "method must be one of fast, refine, gatys"),
        (sample_files(style=False), {"style_id": 3}, "method refine needs a style image"),
        (sample_files(style=False), {"style_id": 3, "method": "gatys"}, "method gatys needs"),
        (sample_files(style=False), {"style_id": 26, "method": "fast"}, "style id must be"),
        (sample_files(), {"style_id": 3, "method": "fast"}, "style: give a style image or"),
        (sample_files(style=False), {"method": "fast"}, "style: give a style image or"),
    ]
    for files, data, words in cases:
        r = api.post("/style/jobs", files=files, data=data, headers=h)
        assert words in is_problem(r, 422, "invalid-input")["detail"], (data, r.text)
