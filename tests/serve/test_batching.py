"""Micro-batching with the real face encoder: same descriptors, fewer calls, a bounded queue."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cnnkit.face.pipeline import default_encoder
from cnnkit.serve.batching import BatchingEncoder
from cnnkit.serve.problems import ServiceBusy


class Gated:
    """The real encoder behind a gate the test opens, and a record of each call's batch size."""

    def __init__(self) -> None:
        self.encoder = default_encoder()
        self.model_id = self.encoder.model_id
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []

    def embed(self, chips: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(30)
        self.sizes.append(len(chips))
        return self.encoder.embed(chips)


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 150, 150, 3), dtype=np.uint8)


def test_concurrent_requests_share_encoder_calls(chips: np.ndarray) -> None:
    inner = Gated()
    batching = BatchingEncoder(inner, max_batch=8, max_wait=0.05, max_queue=64)
    try:
        assert batching.model_id == inner.model_id
        parts = [chips[i : i + 2] for i in range(0, 12, 2)]  # 6 requests of 2 chips
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(batching.embed, p) for p in parts]
            inner.entered.wait(10)  # the first batch is in the encoder; the others queue
            inner.gate.set()
            results = [f.result(timeout=60) for f in futures]
        expected = inner.encoder.embed(chips)
        np.testing.assert_allclose(np.concatenate(results), expected, atol=1e-4)
        assert sum(inner.sizes) == 12 and len(inner.sizes) < 6 and max(inner.sizes) <= 8
    finally:
        inner.gate.set()
        batching.close()


def test_a_full_queue_answers_busy_at_once(chips: np.ndarray) -> None:
    inner = Gated()
    batching = BatchingEncoder(inner, max_batch=2, max_wait=0.0, max_queue=4)
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(batching.embed, chips[:2])  # taken by the worker, held at the gate
            assert inner.entered.wait(10)
            queued = [pool.submit(batching.embed, chips[i : i + 2]) for i in (2, 4)]  # 4 waiting
            while batching.depth < 4:
                threading.Event().wait(0.01)
            with pytest.raises(ServiceBusy) as refused:
                batching.embed(chips[6:7])
            assert refused.value.retry_after >= 1
            inner.gate.set()
            assert len(first.result(60)) == 2 and all(len(f.result(60)) == 2 for f in queued)
        assert batching.depth == 0 and len(batching.embed(chips[6:7])) == 1
    finally:
        inner.gate.set()
        batching.close()


def test_encoder_errors_reach_every_waiting_request() -> None:
    batching = BatchingEncoder(default_encoder(), max_batch=4, max_wait=0.0)
    try:
        with pytest.raises(Exception, match="150"):
            batching.embed(np.zeros((1, 10, 10, 3), np.uint8))
        assert batching.embed(np.zeros((1, 150, 150, 3), np.uint8)).shape == (1, 128)
    finally:
        batching.close()


def test_a_lone_request_does_not_wait_for_company(chips: np.ndarray) -> None:
    batching = BatchingEncoder(default_encoder(), max_batch=8, max_wait=60.0, in_flight=lambda: 1)
    try:
        done = threading.Event()
        out: list[np.ndarray] = []
        worker = threading.Thread(
            target=lambda: (out.append(batching.embed(chips[:1])), done.set())
        )
        worker.start()
        assert done.wait(30)  # well before max_wait: nobody else is in flight
        assert out[0].shape == (1, 128)
    finally:
        batching.close()
