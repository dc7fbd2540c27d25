"""CLI error paths: every unreadable input gives exit 2 and one line `error: <path>: ...` on
stderr, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from tests.io.test_read_errors import huge_png_header


def _good_bytes(tmp_path: Path, suffix: str) -> bytes:
    rng = np.random.default_rng(3)
    path = tmp_path / f"good{suffix}"
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


def _run_edges(path: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    out = path.parent / "out.png"
    code = main(["edges", str(path), "-o", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert not out.exists()
    return lines[0]


def _expect(line: str, path: Path, what: str) -> None:
    assert line.startswith(f"error: {path}: "), line
    assert what in line, line


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "missing.jpg"
    _expect(_run_edges(path, capsys), path, "no such file")


def test_folder_given(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    _expect(_run_edges(folder, capsys), folder, "folder")


def test_text_file_renamed_jpg(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("shopping list: eggs, milk\n")
    _expect(_run_edges(path, capsys), path, "not a readable image")


def test_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = bytearray(_good_bytes(tmp_path, ".png"))
    data[40:400] = b"\xff" * 360
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    _expect(_run_edges(path, capsys), path, "not a readable image")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated(tmp_path: Path, capsys: pytest.CaptureFixture, suffix: str) -> None:
    data = _good_bytes(tmp_path, suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    _expect(_run_edges(path, capsys), path, "not a readable image")


def test_decompression_bomb_header(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(huge_png_header(120_000, 90_000))
    _expect(_run_edges(path, capsys), path, "too large")


def test_pixel_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(_good_bytes(tmp_path, ".png"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    _expect(_run_edges(path, capsys), path, "too large")


def test_negative_threshold(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(_good_bytes(tmp_path, ".png"))
    line = _run_edges(path, capsys, "--threshold", "-1")
    assert line.startswith("error: --threshold must be a number >= 0"), line


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "ok.png"
    image.write_bytes(_good_bytes(tmp_path, ".png"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "edges.png"  # its parent is a file
    code = main(["edges", str(image), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {out}: cannot write the output"), err
    assert len(err.strip().splitlines()) == 1


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"GIF89a but not really")
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "edges", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}: not a readable image ("), done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [path]
