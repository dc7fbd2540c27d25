"""What handlers share: the caller's gallery as a PersonStore, and inference off the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from cnnkit.serve.auth import Principal
from cnnkit.serve.problems import RequestTimeout
from cnnkit.serve.replica import GalleryStore

T = TypeVar("T")


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
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError as exc:
        raise RequestTimeout(
            f"the request took longer than the time-out of {timeout:g} s", retry_after=2
        ) from exc
