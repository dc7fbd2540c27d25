"""Unreadable inputs raise ImageReadError naming the file, never a bare Pillow/OS exception."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import CnnkitError, ImageReadError
from cnnkit.io import load_image


def _png_bytes(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    return (tmp_path / "ok.png").read_bytes()


def _jpeg_bytes(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    return (tmp_path / "ok.jpg").read_bytes()


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (with a tiny, useless IDAT)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _check(path: Path, what: str) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    err = info.value
    assert isinstance(err, CnnkitError)
    assert err.path == str(path)
    assert what in err.what
    assert "\n" not in err.message
    return err


def test_missing_file(tmp_path: Path) -> None:
    _check(tmp_path / "nope.png", "no such file")


def test_folder(tmp_path: Path) -> None:
    _check(tmp_path, "folder")


def test_text_renamed_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    _check(tmp_path / "notes.jpg", "not a readable image")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    _check(tmp_path / "empty.png", "not a readable image")


def test_corrupt_png_body(tmp_path: Path) -> None:
    data = bytearray(_png_bytes(tmp_path))
    data[60:200] = bytes(140)  # zero out part of the compressed stream (and its CRC)
    (tmp_path / "corrupt.png").write_bytes(bytes(data))
    _check(tmp_path / "corrupt.png", "not a readable image")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_png(tmp_path: Path, keep: float) -> None:
    data = _png_bytes(tmp_path)
    (tmp_path / "cut.png").write_bytes(data[: int(len(data) * keep)])
    _check(tmp_path / "cut.png", "not a readable image")


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    data = _jpeg_bytes(tmp_path)
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * keep)])
    _check(tmp_path / "cut.jpg", "not a readable image")


def test_decompression_bomb_header(tmp_path: Path) -> None:
    # 100000 x 100000 = 1e10 pixels: refused from the header, before any pixel is decoded.
    (tmp_path / "bomb.png").write_bytes(huge_png_header(100_000, 100_000))
    err = _check(tmp_path / "bomb.png", "too large")
    assert err.hint and "pixels" in err.hint


@pytest.mark.parametrize("limit", [64 * 64 - 1, 64 * 64 // 2 - 1])
def test_pixel_guard_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    # Just over the limit Pillow warns, over twice the limit it raises: both are refused.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    (tmp_path / "ok.png").write_bytes(_png_bytes(tmp_path))
    _check(tmp_path / "ok.png", "too large")


def test_damaged_exif_loads_quietly(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    # A JPEG whose EXIF block is cut short: the pixels are fine, Pillow warns ("Corrupt EXIF
    # data"). The image loads, and the warnings go to the debug log, not to the user's terminal.
    img = Image.fromarray(np.zeros((8, 6, 3), np.uint8))
    exif = img.getexif()
    exif[0x010F] = "a camera maker " * 4
    img.save(tmp_path / "exif.jpg", exif=exif.tobytes()[:30])
    caplog.set_level("DEBUG", logger="cnnkit.io.image")
    assert load_image(tmp_path / "exif.jpg").shape == (8, 6, 3)
    assert [str(w.message) for w in recwarn] == []
    assert "EXIF" in caplog.text


def test_heic_without_a_decoder_says_what_to_do(tmp_path: Path) -> None:
    # An iPhone photo starts with an ISO BMFF "ftyp" box of brand heic; Pillow alone cannot
    # read it. AVIF (same box, brand avif) is not taken for HEIC.
    head = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    (tmp_path / "IMG_0001.HEIC").write_bytes(head + bytes(300))
    err = _check(tmp_path / "IMG_0001.HEIC", "HEIC/HEIF photo")
    assert err.hint == "pip install pillow-heif, or export it as JPEG"
    (tmp_path / "x.avif").write_bytes(head.replace(b"heic", b"avif") + bytes(300))
    err = _check(tmp_path / "x.avif", "not a readable image")
    assert "HEIC" not in err.message
