"""What handlers share: the caller's gallery as a PersonStore, and inference off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Query, Request

from cnnkit.serve.auth import Principal
from cnnkit.serve.problems import RequestTimeout
from cnnkit.serve.replica import GalleryStore

T = TypeVar("T")

#: The detector's upsampling, a query parameter of every endpoint that finds faces.
UPSAMPLE = Query(
    1, ge=0, le=3, description="double the photo this many times before detecting (small faces)"
)


def gallery_store(request: Request, principal: Principal) -> GalleryStore:
    """The caller's gallery (its key's) as a PersonStore, writes audited under the key's id."""
    return GalleryStore(request.app.state.replica, principal.gallery, actor=principal.key_id)


async def offload(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the inference thread pool; 503 + Retry-After past the request time-out.

    The event loop stays free for other requests while detection, alignment, the encoder and
    the database work. A timed-out call is abandoned (its thread finishes on its own).
    """
    state = request.app.state
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
