"""What handlers share: the caller's gallery as a PersonStore, and inference off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from fastapi import Query, Request, UploadFile

from cnnkit.serve.auth import Principal
from cnnkit.serve.problems import RequestTimeout, ServiceBusy
from cnnkit.serve.replica import GalleryStore
from cnnkit.serve.uploads import Upload, decode_rgb, read_upload

T = TypeVar("T")

#: The detector's upsampling, a query parameter of every endpoint that finds faces.
UPSAMPLE = Query(
    1,
    ge=0,
    le=3,
    description="double the photo this many times before detecting (small faces: 1 finds them "
    "down to ~40 px; a photo over 3 Mpx is searched scaled down to 3 Mpx, where 2 finds those "
    "under ~60 px of a 12 Mpx photo)",
)


def gallery_store(request: Request, principal: Principal) -> GalleryStore:
    """The caller's gallery (its key's) as a PersonStore, writes audited under the key's id."""
    return GalleryStore(request.app.state.replica, principal.gallery, actor=principal.key_id)


async def offload(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the inference thread pool; 503 + Retry-After past the request time-out,
    or at once when ``max_pending`` requests are already in or waiting for the pool.

    The event loop stays free for other requests while detection, alignment, the encoder and
    the database work. A timed-out call is abandoned (its thread finishes on its own).
    """
    state = request.app.state
    if state.in_flight >= state.config.max_pending:
        raise ServiceBusy(
            f"{state.in_flight} requests are already waiting for the inference threads",
            retry_after=1,
        )
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(state.executor, functools.partial(fn, *args, **kwargs))
    timeout = state.config.request_timeout
    state.in_flight += 1  # read by the batching encoder's worker: no lone request waits
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError as exc:
        raise RequestTimeout(
            f"the request took longer than the time-out of {timeout:g} s", retry_after=2
        ) from exc
    finally:
        state.in_flight -= 1


async def on_photo(request: Request, file: UploadFile, fn: Callable[[np.ndarray, Upload], T]) -> T:
    """Read an uploaded photo into memory (413 over the limit), then run ``fn(image, upload)``
    on the inference pool, ``image`` being the decoded (H, W, 3) uint8 RGB array."""
    config = request.app.state.config
    upload = await read_upload(file, config.max_upload_bytes)

    def work() -> T:
        return fn(decode_rgb(upload, config.max_pixels), upload)

    return await offload(request, work)
