"""Micro-batching: chips from concurrent requests go through the encoder in one call.

:class:`BatchingEncoder` looks like :class:`cnnkit.face.encoder.FaceEncoder` to the use cases
(``.embed(chips) -> descriptors``, ``.model_id``). Request threads put their chips
(N, 150, 150, 3) uint8 in a queue and wait; one worker thread takes what arrived, up to
``max_batch`` chips or what came within ``max_wait`` seconds of the first, whichever first
(or as soon as every request in flight has queued its chips),
calls the real encoder once on the stacked (B, 150, 150, 3) batch, and hands each request its
rows of the (B, 128) result. The queue is bounded (``max_queue`` chips): when full, ``embed``
raises :class:`ServiceBusy` at once (503 + Retry-After) instead of letting latency grow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from cnnkit.serve.problems import ServiceBusy

log = logging.getLogger(__name__)


class BatchingEncoder:
    """A thread-safe, batching front of a face encoder.

    Args:
        encoder: the real encoder (``embed`` (N, 150, 150, 3) uint8 -> (N, d) float32).
        max_batch: most chips per encoder call (B).
        max_wait: seconds to wait for more chips after the first one arrives.
        max_queue: most chips waiting; more -> ServiceBusy.
        on_batch: called with each batch's size (metrics).
        on_depth: called with the queue depth in chips whenever it changes (metrics).
        in_flight: how many requests are being served now; the worker stops waiting for more
            chips once that many requests are queued (a lone request does not wait max_wait).
    """

    def __init__(
        self,
        encoder: Any,
        *,
        max_batch: int = 32,
        max_wait: float = 0.005,
        max_queue: int = 256,
        on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        in_flight: Callable[[], int] | None = None,
    ):
        self.encoder = encoder
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait))
        self.max_queue = max(1, int(max_queue))
        self._on_batch = on_batch or (lambda n: None)
        self._on_depth = on_depth or (lambda n: None)
        self._in_flight = in_flight or (lambda: 1 << 30)
        self._items: deque[tuple[np.ndarray, Future]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cnnkit-encoder", daemon=True)
        self._thread.start()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dim(self) -> int:
        """Descriptor length d (128)."""
        return int(self.encoder.dim)

    @property
    def device(self) -> object:
        """The encoder's torch device (FaceNet runs on it too)."""
        return getattr(self.encoder, "device", "cpu")

    @property
    def precision(self) -> str:
        """The encoder's arithmetic (fp32, bf16 or int8; FaceNet follows it for bf16)."""
        return str(getattr(self.encoder, "precision", "fp32"))

    @property
    def depth(self) -> int:
        """Chips waiting for the encoder."""
        return self._queued

    def embed(self, chips: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, 150, 150, 3) or (150, 150, 3) uint8 chips -> (N, d) float32 descriptors."""
        x = np.asarray(chips)
        x = x[None] if x.ndim == 3 else x
        n = len(x)
        if n == 0:
            return self.encoder.embed(x)
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise ServiceBusy("the server is shutting down", retry_after=5)
            # One request larger than the whole queue still gets in when the queue is empty.
            if self._queued and self._queued + n > self.max_queue:
                raise ServiceBusy(
                    f"the encoder queue is full ({self._queued} faces waiting)", retry_after=1
                )
            self._items.append((x, future))
            self._queued += n
            self._on_depth(self._queued)
            self._cond.notify()
        return future.result()

    def _take(self) -> list[tuple[np.ndarray, Future]] | None:
        """Wait for the next batch: up to max_batch chips or max_wait after the first."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._closed and not self._items:
                return None
            deadline = time.monotonic() + self.max_wait
            while (
                self._queued < self.max_batch
                and len(self._items) < self._in_flight()
                and not self._closed
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[tuple[np.ndarray, Future]] = []
            size = 0
            while self._items and (not batch or size + len(self._items[0][0]) <= self.max_batch):
                item = self._items.popleft()
                batch.append(item)
                size += len(item[0])
            self._queued -= size
            self._on_depth(self._queued)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                chips = np.concatenate([x for x, _ in batch])  # (B, 150, 150, 3)
                self._on_batch(len(chips))
                out = self.encoder.embed(chips)  # (B, d)
            except BaseException as exc:  # hand the error to every waiting request
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for x, future in batch:
                future.set_result(out[start : start + len(x)])
                start += len(x)

    def close(self) -> None:
        """Finish what is queued, then stop the worker thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)
