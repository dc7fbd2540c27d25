"""Style jobs: run to the end, report progress, cancel, and give the same image as transfer()."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.io import sample_path
from cnnkit.style import transfer
from cnnkit.style.jobs import JobsBusy, StyleJobRunner

TINY = {"size": 32, "iterations": 6, "backbone": "random-vgg19", "precision": "fp32"}


@pytest.fixture
def runner():
    r = StyleJobRunner(preview_every=2)
    yield r
    r.close()


def _png(data: bytes | None) -> np.ndarray:
    assert data is not None
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_job_runs_to_the_end_like_transfer(runner: StyleJobRunner) -> None:
    content, style = sample_path("chelsea"), sample_path("gravel")
    job = runner.start(content, style, **TINY)
    assert runner.wait(job.id, 120).state == "done", job.error
    assert job.iteration == job.total == 6 and job.as_dict()["has_result"]
    expected, _ = transfer(content, style, **TINY)
    got = _png(job.result)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - np.round(expected * 255).astype(int)).max() <= 1


def test_cancel_stops_early_and_keeps_the_latest_image(runner: StyleJobRunner) -> None:
    job = runner.start(sample_path("chelsea"), sample_path("gravel"), **dict(TINY, iterations=2000))
    end = time.monotonic() + 60
    while job.iteration < 3 and time.monotonic() < end:
        time.sleep(0.01)
    runner.cancel(job.id)
    assert runner.wait(job.id, 60).state == "cancelled"
    assert 3 <= job.iteration < 2000
    assert _png(job.result).shape[2] == 3


def test_bad_options_and_unknown_jobs(runner: StyleJobRunner) -> None:
    with pytest.raises(CnnkitError, match="size must be between 16 and 512"):
        runner.start(sample_path("chelsea"), sample_path("gravel"), size=4000)
    with pytest.raises(NotFoundError, match="no style job"):
        runner.get("nope")


def test_waiting_jobs_are_bounded() -> None:
    runner = StyleJobRunner(max_waiting=2)
    try:
        long = dict(TINY, iterations=2000)
        first = runner.start(sample_path("chelsea"), sample_path("gravel"), **long)
        runner.start(sample_path("chelsea"), sample_path("gravel"), **long)
        with pytest.raises(JobsBusy, match="2 style jobs are already waiting or running"):
            runner.start(sample_path("chelsea"), sample_path("gravel"), **long)
        runner.cancel(first.id)
        runner.wait(first.id, 60)
        third = runner.start(sample_path("chelsea"), sample_path("gravel"), **TINY)
        assert third.state in ("queued", "running")
    finally:
        runner.close()
