"""`cnnkit edges` end to end: reads an image, writes the PNG, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.edges import detect, to_display
from cnnkit.io import load_image


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A 40x60 RGB PNG with a bright square on a dark background."""
    pixels = np.full((40, 60, 3), 30, dtype=np.uint8)
    pixels[10:30, 20:40] = (250, 200, 100)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def _read(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img


def test_sobel_default_output_in_cwd(
    photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["edges", str(photo)]) == 0
    out = work / "photo-edges-sobel.png"
    assert capsys.readouterr().out.strip() == str(out)
    img = _read(out)
    assert img.format == "PNG" and img.mode == "L" and img.size == (60, 40)
    expected = to_display(detect(load_image(photo), "sobel"), signed=False)
    np.testing.assert_array_equal(np.asarray(img), expected)
    assert [p.name for p in work.iterdir()] == ["photo-edges-sobel.png"]  # no temp file left


def test_vertical_signed_output_is_red_and_blue(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "v.png"
    assert main(["-q", "edges", str(photo), "--kernel", "vertical", "-o", str(out)]) == 0
    rgb = np.asarray(_read(out))
    assert rgb.shape == (40, 60, 3)
    # Left side of the square: dark -> bright, negative (blue); right side: positive (red).
    np.testing.assert_array_equal(rgb[20, 19], [0, 0, 255])
    np.testing.assert_array_equal(rgb[20, 40], [255, 0, 0])
    np.testing.assert_array_equal(rgb[2, 2], [255, 255, 255])


def test_threshold_writes_a_binary_map(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bw.png"
    assert main(["-q", "edges", str(photo), "--threshold", "0.5", "-o", str(out)]) == 0
    binary = np.asarray(_read(out))
    assert set(np.unique(binary)) == {0, 255}
    assert binary[20, 20] == 255 and binary[20, 30] == 0 and binary[2, 2] == 0


def test_output_folder_gets_the_default_name(photo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["-q", "edges", str(photo), "-k", "laplacian", "-o", str(folder)]) == 0
    assert (folder / "photo-edges-laplacian.png").is_file()


def test_console_entry_point_runs_on_a_jpeg(photo: Path, tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.jpg"
    Image.open(photo).save(jpeg, quality=90)
    out = tmp_path / "s.png"
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "edges", str(jpeg), "-k", "scharr", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _read(out).size == (60, 40)


def test_help_teaches_the_options(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["edges", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("--kernel", "--threshold", "scharr", "default: sobel", "Examples"):
        assert word in text


def test_output_format_follows_the_suffix(photo: Path, tmp_path: Path) -> None:
    assert main(["-q", "edges", str(photo), "-o", str(tmp_path / "e.jpg")]) == 0
    assert _read(tmp_path / "e.jpg").format == "JPEG"
    assert main(["-q", "edges", str(photo), "-o", str(tmp_path / "e")]) == 0
    assert _read(tmp_path / "e").format == "PNG"
