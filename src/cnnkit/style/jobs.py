"""Style transfer as background jobs: start, watch the progress and the image improve, cancel,
fetch the result (the web app's Style tab, over :func:`cnnkit.style.transfer`).

A :class:`StyleJobRunner` runs one job at a time on a daemon worker thread (the optimisation
already uses every core; a daemon, so a job never holds up the process's exit) and keeps the
last ``keep`` jobs in memory. Each job records the iteration reached, a PNG of the best image so
far every ``preview_every`` iterations, and at the end the result PNG. Cancelling stops the
optimisation at its next iteration and keeps the latest image.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.io import encode_image
from cnnkit.style.transfer import ImageInput, StyleConfig, transfer

log = logging.getLogger(__name__)

#: Job states, in order; the last three are final.
STATES = ("queued", "running", "done", "cancelled", "failed")


class JobsBusy(CnnkitError):
    """Too many jobs waiting: try again when one has finished."""


class _Cancelled(Exception):
    """Raised inside the optimisation's callback to stop a cancelled job."""


@dataclass
class StyleJob:
    """One style transfer job. Read it from any thread; the worker updates it."""

    id: str
    total: int  # iterations to run (per scale, times the scales)
    state: str = "queued"
    iteration: int = 0
    preview: bytes | None = None  # PNG of the best image so far
    preview_iteration: int = 0
    result: bytes | None = None  # PNG, once done (or cancelled with an image)
    error: str | None = None  # one-line message when failed
    seconds: float = 0.0
    backbone: str = ""
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "cancelled", "failed")

    def as_dict(self) -> dict[str, Any]:
        """The JSON-able status (without the images)."""
        return {
            "id": self.id,
            "state": self.state,
            "iteration": self.iteration,
            "total": self.total,
            "preview_iteration": self.preview_iteration,
            "has_result": self.result is not None,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "backbone": self.backbone,
        }


class StyleJobRunner:
    """Runs :class:`StyleJob` s one at a time; ``close()`` cancels what is left."""

    def __init__(
        self, keep: int = 16, preview_every: int = 5, max_size: int = 512, max_waiting: int = 4
    ) -> None:
        self.keep, self.preview_every, self.max_size = keep, preview_every, max_size
        self.max_waiting = max_waiting  # unfinished jobs (queued or running) at most
        self._jobs: OrderedDict[str, StyleJob] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[StyleJob, Any, Any, StyleConfig] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start(
        self,
        content: ImageInput,
        style: ImageInput,
        config: StyleConfig | None = None,
        **options: Any,
    ) -> StyleJob:
        """Queue a job; returns at once. Options are :class:`StyleConfig` fields.

        Raises:
            CnnkitError: a size or iteration count out of range.
            JobsBusy: ``max_waiting`` jobs are unfinished already.
        """
        config = replace(config or StyleConfig(), **options)
        if not 16 <= config.size <= self.max_size:
            raise CnnkitError(
                f"size must be between 16 and {self.max_size} px, got {config.size}",
                hint="a small size (128-256) gives a result in seconds",
            )
        if not 1 <= config.iterations <= 2000:
            raise CnnkitError(f"iterations must be between 1 and 2000, got {config.iterations}")
        scales = 2 if config.multiscale and config.size >= 64 else 1
        job = StyleJob(uuid.uuid4().hex[:12], total=config.iterations * scales)
        with self._lock:
            unfinished = sum(not j.finished for j in self._jobs.values())
            if unfinished >= self.max_waiting:
                raise JobsBusy(
                    f"{unfinished} style jobs are already waiting or running",
                    hint="wait for one to finish, or cancel one",
                )
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                old_id, old = next(iter(self._jobs.items()))
                if not old.finished:
                    break
                del self._jobs[old_id]
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="style-job", daemon=True)
                self._worker.start()
        self._queue.put((job, content, style, config))
        return job

    def get(self, job_id: str) -> StyleJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(
                f"no style job {job_id!r}", hint="start one; jobs are kept in memory"
            )
        return job

    def cancel(self, job_id: str) -> StyleJob:
        job = self.get(job_id)
        job.cancel_requested.set()
        if job.state == "queued":
            job.state = "cancelled"
        return job

    def wait(self, job_id: str, timeout: float = 60.0) -> StyleJob:
        """Block until the job is finished (or ``timeout`` seconds); return it."""
        job, end = self.get(job_id), time.monotonic() + timeout
        while not job.finished and time.monotonic() < end:
            time.sleep(0.02)
        return job

    def close(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_requested.set()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout=10)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            self._run(*item)

    def _run(self, job: StyleJob, content: Any, style: Any, config: StyleConfig) -> None:
        if job.cancel_requested.is_set():
            job.state = "cancelled"
            return
        job.state = "running"
        start = time.perf_counter()

        def on_snapshot(iteration: int, image: np.ndarray) -> None:
            job.iteration = iteration
            job.seconds = time.perf_counter() - start
            if iteration % self.preview_every == 0 or iteration == 1:
                job.preview, job.preview_iteration = encode_image(image), iteration
            if job.cancel_requested.is_set():
                raise _Cancelled

        try:
            image, history = transfer(
                content, style, replace(config, save_every=1), on_snapshot=on_snapshot
            )
        except _Cancelled:
            job.result = job.preview
            job.state = "cancelled"
        except (CnnkitError, ValueError) as exc:
            job.error, job.state = str(exc).splitlines()[0] if str(exc) else repr(exc), "failed"
        except Exception as exc:  # a bug: keep the server alive, say what happened
            log.exception("style job %s failed", job.id)
            job.error, job.state = f"internal error: {type(exc).__name__}", "failed"
        else:
            job.result = job.preview = encode_image(image)
            job.preview_iteration = job.iteration = job.total
            job.backbone = history.backbone
            job.state = "done"
        job.seconds = time.perf_counter() - start
