"""Push the change feed into a replica's index as it happens (backends that can wake a waiter).

:class:`~cnnkit.serve.replica.ReplicaIndex` reads the feed lazily, before a search, at most every
``sync_interval`` seconds. With PostgreSQL a replica can do better: a :class:`Follower` thread
blocks in ``storage.wait_for_change`` (LISTEN/NOTIFY), and as soon as another replica commits it
applies the change (``replica.sync(force=True)``), off the request path. It also syncs after
every time-out, so a missed notification costs at most ``poll_s``. Backends without
``wait_for_change`` (SQLite) need no follower: :func:`start_follower` returns None.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class Follower:
    """A daemon thread: wait for a change (or ``poll_s``), then sync the replica; until stopped."""

    def __init__(self, storage: Any, replica: Any, poll_s: float = 1.0):
        self.storage = storage
        self.replica = replica
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cnnkit-follower", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end; it does within ``poll_s`` (it is a daemon: exit never waits)."""
        self._stop.set()
        wake = getattr(self.storage, "wake", None)
        if callable(wake):
            try:
                wake()  # out of wait_for_change now, rather than at its time-out
            except Exception:  # noqa: BLE001 - the time-out ends the wait anyway
                log.debug("could not wake the follower", exc_info=True)
        self._thread.join(timeout=min(timeout, self.poll_s + 1.0))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.storage.wait_for_change(self.poll_s)
                if not self._stop.is_set():
                    self.replica.sync(force=True)
            except Exception as exc:  # noqa: BLE001 - keep following; requests still sync lazily
                log.warning("change feed follower: %s", exc)
                self._stop.wait(self.poll_s)


def start_follower(storage: Any, replica: Any, poll_s: float = 1.0) -> Follower | None:
    """A running :class:`Follower` if ``storage`` can wait for changes, else None."""
    if not callable(getattr(storage, "wait_for_change", None)):
        return None
    return Follower(storage, replica, poll_s).start()
