"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader never sees a half-written file, and a crash mid-write leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cnnkit.errors import OutputError


def _new_file_mode(path: Path) -> int:
    """Permissions for the result: those of the file being replaced, else 0o666 minus umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write the output: {exc.strerror or exc}",
        path=path,
        hint="choose another output path, or check the folder's permissions",
    )


def _open_temp_beside(path: Path) -> tuple[int, str]:
    """Create the folder if needed and a temporary file in it; OutputError when impossible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc


def check_writable(path: str | Path) -> Path:
    """Fail early, before long work, when ``path`` could not be written atomically.

    Creates the folder if needed and a temporary file beside ``path``, then removes it.

    Raises:
        OutputError: the folder cannot be created or written, or ``path`` is a folder.
    """
    path = Path(path)
    fd, tmp = _open_temp_beside(path)
    os.close(fd)
    os.unlink(tmp)
    return path


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    Raises :class:`~cnnkit.errors.OutputError` when the folder cannot be made or written.

    Example::

        with atomic_write("out.png") as f:
            image.save(f, format="PNG")
    """
    path = Path(path)
    fd, tmp = _open_temp_beside(path)
    try:
        with os.fdopen(fd, mode) as f:
            # mkstemp makes the file private (0o600); give it the mode a plain open() would.
            os.chmod(tmp, _new_file_mode(path))
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _output_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
