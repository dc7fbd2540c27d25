"""Typed errors with a one-line message.

Every error the library raises for bad input is a :class:`CnnkitError`. The CLI prints it as
``error: <file>: <what> (<what to do>)`` and exits non-zero; tracebacks show only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path

#: Paths (and names) longer than this are shortened when an error line echoes them.
PATH_LIMIT = 200


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
        text = self.what if self.path is None else f"{show_path(self.path)}: {self.what}"
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
    """A user value as it may be echoed in a one-line error: quoted like ``repr``, cut to ``limit``.

    Control characters (newlines, escapes) show escaped, so a value cannot break the one line.
    A longer value keeps its first ``limit - 1`` characters, an ellipsis and its length:
    ``shorten("a" * 100000)`` -> ``'aaaa…' (100000 characters)``. Non-strings (paths, numbers)
    are shown through ``str`` first.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit - 1] + '…'!r} ({len(text)} characters)"


def show_path(path: str | Path) -> str:
    """A path as an error line shows it: whole (unquoted) up to :data:`PATH_LIMIT` characters,
    else :func:`shorten`-ed to that limit."""
    text = str(path)
    return text if len(text) <= PATH_LIMIT else shorten(text, PATH_LIMIT)
