"""Typed errors with a one-line message.

Every error the library raises for bad input is a :class:`CnnkitError`. The CLI prints it as
``error: <file>: <what> (<what to do>)`` and exits non-zero; tracebacks show only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path


class CnnkitError(Exception):
    """A user-facing error: which thing, what is wrong, what to do.

    Args:
        what: what is wrong, e.g. ``"not a readable image"``.
        path: the file or object concerned (optional).
        hint: what the user can do about it (optional).
    """

    exit_code = 2

    def __init__(self, what: str, *, path: str | Path | None = None, hint: str | None = None):
        self.what = what
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what if self.path is None else f"{self.path}: {self.what}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ImageReadError(CnnkitError):
    """A file that is missing, corrupt, truncated, too large or not an image."""


class ShapeError(CnnkitError, ValueError):
    """An array or tensor of the wrong shape, or a filter that does not fit its input."""


class WeightsError(CnnkitError):
    """A checkpoint that is missing, corrupt, fails its hash, or does not fit the model."""


class DatabaseError(CnnkitError):
    """The person database is locked, corrupt, empty, or made by another encoder."""


class NotFoundError(CnnkitError):
    """A name (person, model, layer) that is not known."""


class OutputError(CnnkitError):
    """An output (image, checkpoint, database, report) that cannot be written where asked."""


class DependencyError(CnnkitError):
    """An optional package that a feature needs is not installed."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters with an ellipsis, for echoing user
    input in one-line errors (a 100,000-character name must not come back whole)."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    if len(text) <= limit:
        return text
    return f"{text[: limit - 5]}...{text[0]} ({len(str(value)):,} characters)"
