"""Atomic saves: the target is replaced in one step; a failure leaves it, and no temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import OutputError
from cnnkit.io import atomic_write, atomic_write_bytes, save_image


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_save_image_leaves_no_temp_file(tmp_path: Path) -> None:
    out = save_image(tmp_path / "out.png", np.zeros((4, 4, 3), dtype=np.float32))
    assert out == tmp_path / "out.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (4, 4)


def test_save_image_creates_parent_folders(tmp_path: Path) -> None:
    out = save_image(tmp_path / "a" / "b" / "out.png", np.ones((2, 3)))
    assert out.is_file()


def test_save_image_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    save_image(target, np.zeros((2, 2)))
    save_image(target, np.ones((5, 6)))
    with Image.open(target) as img:
        assert img.size == (6, 5)
    assert _leftovers(tmp_path) == []


def test_failed_encoding_does_not_clobber(tmp_path: Path) -> None:
    target = tmp_path / "keep.jpg"
    target.write_bytes(b"previous contents")
    with pytest.raises(OSError):
        save_image(target, np.zeros((4, 4, 4)))  # RGBA cannot be written as JPEG
    assert target.read_bytes() == b"previous contents"
    assert _leftovers(tmp_path) == []


def test_failure_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnkit.io.atomic as atomic

    target = tmp_path / "out.png"
    save_image(target, np.zeros((2, 2)))
    before = target.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OutputError, match="cannot write the output: read-only"):
        save_image(target, np.ones((3, 3)))
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_text_mode(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "t.html", "w") as f:
        f.write("<p>é</p>")
    assert (tmp_path / "t.html").read_text() == "<p>é</p>"


def test_new_files_get_the_usual_permissions(tmp_path: Path) -> None:
    # Like open(path, "w"): 0o666 minus the umask, not the private 0o600 of a temp file.
    umask = os.umask(0o022)
    try:
        out = save_image(tmp_path / "shared.png", np.zeros((2, 2)))
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(umask)


def test_replaced_files_keep_their_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_unwritable_folder_is_a_one_line_output_error(tmp_path: Path) -> None:
    from cnnkit.io import check_writable

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "out.png"  # its parent is a file
    with pytest.raises(OutputError, match="cannot write the output") as info:
        save_image(target, np.zeros((2, 2)))
    assert info.value.path == str(target)
    with pytest.raises(OutputError):
        check_writable(target)
    with pytest.raises(OutputError, match="Is a directory"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "new" / "ok.png") == tmp_path / "new" / "ok.png"
    assert _leftovers(tmp_path / "new") == []
