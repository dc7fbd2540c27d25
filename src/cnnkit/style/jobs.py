"""Style transfer as background jobs: start, watch the progress and the image improve, cancel,
fetch the result (the web app's Style tab, over :func:`cnnkit.style.transfer`).

A :class:`StyleJobRunner` runs one job at a time on a daemon worker thread (the optimisation
already uses every core; a daemon, so a job never holds up the process's exit) and keeps the
last ``keep`` jobs in memory. Each job records the iteration reached, a PNG of the best image so
far every ``preview_every`` iterations, and at the end the result PNG. Cancelling stops the
optimisation at its next iteration and keeps the latest image.

Methods (:data:`METHODS`): ``"refine"`` (the default) first computes the fast feed-forward result
(:func:`cnnkit.style.stylize_fast` at the job's size, a fraction of a second), publishes it as
the job's ``fast`` image and first preview, then runs the Gatys optimisation from it
(``init="fast"``, the same image); ``"fast"`` stops after the fast result (it is the result);
``"gatys"`` optimises from the content image, as before. A built-in style (``style_id``, one of
the 26-style network's) has no style image, so it works with ``"fast"`` only.
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
#: How a job paints: the fast result only; the fast result, then Gatys from it; Gatys from C.
METHODS = ("fast", "refine", "gatys")


class JobsBusy(CnnkitError):
    """Too many jobs waiting: try again when one has finished."""


class _Cancelled(Exception):
    """Raised inside the optimisation's callback to stop a cancelled job."""


@dataclass
class StyleJob:
    """One style transfer job. Read it from any thread; the worker updates it."""

    id: str
    total: int  # iterations to run (per scale, times the scales); 1 for the fast method
    method: str = "refine"
    state: str = "queued"
    iteration: int = 0
    preview: bytes | None = None  # PNG of the best image so far
    preview_iteration: int = 0
    result: bytes | None = None  # PNG, once done (or cancelled with an image)
    error: str | None = None  # one-line message when failed
    fast: bytes | None = None  # PNG of the fast feed-forward result (fast, refine)
    fast_seconds: float = 0.0  # its wall time, networks loaded beforehand excluded
    note: str = ""  # e.g. why a refine job started from the content instead
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
            "method": self.method,
            "state": self.state,
            "iteration": self.iteration,
            "total": self.total,
            "preview_iteration": self.preview_iteration,
            "has_result": self.result is not None,
            "has_fast": self.fast is not None,
            "fast_seconds": round(self.fast_seconds, 3),
            "note": self.note,
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
        self._queue: queue.Queue[tuple[StyleJob, Any, Any, int | None, StyleConfig] | None] = (
            queue.Queue()
        )
        self._worker: threading.Thread | None = None
        self._stylizer: Any = None  # the fast networks, loaded by the worker on first use

    def start(
        self,
        content: ImageInput,
        style: ImageInput | None,
        config: StyleConfig | None = None,
        *,
        method: str = "refine",
        style_id: int | None = None,
        **options: Any,
    ) -> StyleJob:
        """Queue a job; returns at once. Options are :class:`StyleConfig` fields.

        ``style`` is the style image S, or None with ``style_id`` (a built-in style, method
        ``"fast"`` only). ``method``: one of :data:`METHODS`. Messages name the option first
        (``"size ..."``, ``"method ..."``, ``"style ..."``) so a client can show them beside it.

        Raises:
            CnnkitError: an option out of range, or a method the style cannot use.
            JobsBusy: ``max_waiting`` jobs are unfinished already.
        """
        config = replace(config or StyleConfig(), **options)
        check_choice(method, style is not None, style_id)
        if not 16 <= config.size <= self.max_size:
            raise CnnkitError(
                f"size must be between 16 and {self.max_size} px, got {config.size}",
                hint="a small size (128-256) gives a result in seconds",
            )
        if not 1 <= config.iterations <= 2000:
            raise CnnkitError(f"iterations must be between 1 and 2000, got {config.iterations}")
        scales = 2 if config.multiscale and config.size >= 64 else 1
        total = 1 if method == "fast" else config.iterations * scales
        if method != "fast" and config.init == "auto":  # the user kept the default start
            config = replace(config, init="fast" if method == "refine" else "content")
        job = StyleJob(uuid.uuid4().hex[:12], total=total, method=method)
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
        self._queue.put((job, content, style, style_id, config))
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

    def _fast(self, job: StyleJob, content: Any, style: Any, style_id: int | None, size: int):
        """The fast result at ``size``, published as the job's ``fast`` image and first preview."""
        from cnnkit.style.fast import FastStylizer, stylize_fast

        if self._stylizer is None:
            self._stylizer = FastStylizer()
        fast = stylize_fast(content, style, style_id=style_id, size=size, stylizer=self._stylizer)
        job.fast_seconds = fast.seconds
        job.fast = job.preview = encode_image(fast.image)
        log.info("style job %s: the fast result in %.3f s", job.id, fast.seconds)
        return fast.image

    def _run(
        self, job: StyleJob, content: Any, style: Any, style_id: int | None, config: StyleConfig
    ) -> None:
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
            if job.method in ("fast", "refine"):
                try:
                    self._fast(job, content, style, style_id, config.size)
                except CnnkitError as exc:
                    if job.method == "fast":
                        raise
                    # e.g. an image under 32 px or the networks not installed: from the content
                    job.note = f"the fast start was skipped: {exc.what}"
                    config = replace(config, init="content")
                if job.method == "fast":
                    job.result, job.iteration = job.fast, 1
                    job.state, job.seconds = "done", time.perf_counter() - start
                    return
                if job.cancel_requested.is_set():
                    raise _Cancelled
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


def check_choice(method: str, has_style_image: bool, style_id: int | None) -> None:
    """Refuse, before any work, a method or style the job cannot run (one-line messages that
    start with the option's name)."""
    from cnnkit.style.fast import N_STYLES

    if method not in METHODS:
        raise CnnkitError(
            f"method must be one of {', '.join(METHODS)}, got {method!r}",
            hint="fast: one pass; refine: fast, then Gatys from it; gatys: from the content",
        )
    if style_id is not None and has_style_image:
        raise CnnkitError(
            "style: give a style image or a built-in style, not both",
            hint="clear one of the two choices",
        )
    if style_id is None and not has_style_image:
        raise CnnkitError("style: give a style image or a built-in style id")
    if style_id is not None and not 0 <= style_id < N_STYLES:
        raise CnnkitError(f"style id must be between 0 and {N_STYLES - 1}, got {style_id}")
    if style_id is not None and method != "fast":
        raise CnnkitError(
            f"method {method} needs a style image; built-in style {style_id} has none",
            hint="choose the fast method, or a style image",
        )
