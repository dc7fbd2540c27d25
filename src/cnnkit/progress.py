"""Progress bars for long work: tqdm on stderr, silenced by ``--quiet`` or ``CNNKIT_QUIET=1``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_quiet = os.environ.get("CNNKIT_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    """Turn every progress bar off (True) or on (False) for this process."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr that respects the quiet switch. Same arguments as ``tqdm``."""
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, disable=_quiet, **kwargs)
