"""cnnkit.io: every Pillow mode becomes RGB float32 in [0, 1], EXIF orientation, NCHW helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.io import (
    array_to_nchw,
    list_images,
    load_image,
    load_image_pil,
    nchw_to_array,
    sample_path,
    save_image,
    to_uint8,
)


def _check_rgb_float(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


def test_rgb_png_round_trip_is_exact(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    _check_rgb_float(image, (5, 7))
    np.testing.assert_array_equal(to_uint8(image), pixels)


def test_mode_L_repeats_gray_in_three_channels(tmp_path: Path) -> None:
    gray = np.array([[0, 64], [128, 255]], dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png")
    _check_rgb_float(image, (2, 2))
    for c in range(3):
        np.testing.assert_allclose(image[:, :, c], gray / 255.0, atol=1e-6)


def test_mode_LA_is_composited_on_white(tmp_path: Path) -> None:
    # (L, A): black opaque, black transparent, black half transparent, white opaque.
    la = np.array([[[0, 255], [0, 0]], [[0, 128], [255, 255]]], dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    image = load_image(tmp_path / "la.png")
    _check_rgb_float(image, (2, 2))
    np.testing.assert_allclose(image[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(image[0, 1], 1.0, atol=1e-6)
    np.testing.assert_allclose(image[1, 0], 1.0 - 128 / 255, atol=2 / 255)
    np.testing.assert_allclose(image[1, 1], 1.0, atol=1e-6)


def test_mode_RGBA_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    _check_rgb_float(image, (1, 3))
    np.testing.assert_allclose(image[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(image[0, 1], [1, 1, 1], atol=1e-6)  # transparent -> white
    half = 1.0 - 128 / 255
    np.testing.assert_allclose(image[0, 2], [half, half, 1.0], atol=2 / 255)


def _palette_image() -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2])
    return img


def test_mode_P_without_transparency_uses_the_palette(tmp_path: Path) -> None:
    _palette_image().save(tmp_path / "p.png")
    image = load_image(tmp_path / "p.png")
    _check_rgb_float(image, (1, 3))
    np.testing.assert_allclose(image[0], np.eye(3), atol=1e-6)


def test_mode_P_with_transparency_becomes_white(tmp_path: Path) -> None:
    img = _palette_image()
    img.save(tmp_path / "pt.png", transparency=1)  # palette entry 1 (green) is transparent
    with Image.open(tmp_path / "pt.png") as check:
        assert check.mode == "P" and "transparency" in check.info
    image = load_image(tmp_path / "pt.png")
    np.testing.assert_allclose(image[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(image[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(image[0, 2], [0, 0, 1], atol=1e-6)


def test_mode_CMYK_jpeg(tmp_path: Path) -> None:
    # White, red (M + Y), black (K) blocks; JPEG is lossy, so compare block means.
    cmyk = np.zeros((8, 24, 4), dtype=np.uint8)
    cmyk[:, 8:16, 1:3] = 255
    cmyk[:, 16:, 3] = 255
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    with Image.open(tmp_path / "cmyk.jpg") as check:
        assert check.mode == "CMYK"
    image = load_image(tmp_path / "cmyk.jpg")
    _check_rgb_float(image, (8, 24))
    np.testing.assert_allclose(image[:, :8].mean(axis=(0, 1)), [1, 1, 1], atol=0.05)
    np.testing.assert_allclose(image[:, 8:16].mean(axis=(0, 1)), [1, 0, 0], atol=0.05)
    np.testing.assert_allclose(image[:, 16:].mean(axis=(0, 1)), [0, 0, 0], atol=0.05)


def test_mode_I16_uses_the_full_16_bit_range(tmp_path: Path) -> None:
    values = np.array([[0, 16384], [32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "i16.png")
    with Image.open(tmp_path / "i16.png") as check:
        assert check.mode.startswith("I")
    image = load_image(tmp_path / "i16.png")
    _check_rgb_float(image, (2, 2))
    np.testing.assert_allclose(image[:, :, 0], values / 65535.0, atol=1 / 255)
    np.testing.assert_allclose(image[:, :, 1], image[:, :, 0])


def test_mode_I_32_bit(tmp_path: Path) -> None:
    values = np.array([[0, 1000], [30000, 65535]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "i32.tiff")
    with Image.open(tmp_path / "i32.tiff") as check:
        assert check.mode == "I"
    image = load_image(tmp_path / "i32.tiff")
    _check_rgb_float(image, (2, 2))
    np.testing.assert_allclose(image[:, :, 0], values / 65535.0, atol=1 / 255)


def test_mode_I_8_bit_range_is_not_darkened(tmp_path: Path) -> None:
    values = np.array([[0, 100], [200, 255]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "i8.tiff")
    image = load_image(tmp_path / "i8.tiff")
    np.testing.assert_allclose(image[:, :, 0], values / 255.0, atol=1 / 255)


def test_exif_orientation_6_is_rotated_upright(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high, a red block in the stored top-left corner. Orientation 6 means
    # "rotate 90 degrees clockwise to display": upright it is 20 wide x 40 high with the block
    # in the top-right corner.
    stored = np.full((20, 40, 3), 255, dtype=np.uint8)
    stored[:8, :8] = (255, 0, 0)
    img = Image.fromarray(stored, "RGB")
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    image = load_image(tmp_path / "rotated.jpg")
    _check_rgb_float(image, (40, 20))
    top_right = image[1:7, -7:-1].mean(axis=(0, 1))
    top_left = image[1:7, 1:7].mean(axis=(0, 1))
    np.testing.assert_allclose(top_right, [1, 0, 0], atol=0.1)
    np.testing.assert_allclose(top_left, [1, 1, 1], atol=0.1)


def test_load_image_pil_gives_rgb(tmp_path: Path) -> None:
    Image.new("L", (4, 3), 7).save(tmp_path / "l.png")
    img = load_image_pil(tmp_path / "l.png")
    assert img.mode == "RGB" and img.size == (4, 3)


def test_sample_images_load_as_rgb_float() -> None:
    image = load_image(sample_path("camera"))  # a grayscale PNG shipped by scikit-image
    _check_rgb_float(image, (512, 512))
    np.testing.assert_array_equal(image[:, :, 0], image[:, :, 2])
    _check_rgb_float(load_image(sample_path("grace_hopper")), (600, 512))  # matplotlib's JPEG


@pytest.mark.parametrize("shape", [(3, 5), (3, 5, 3), (3, 5, 4)])
def test_save_image_float_and_uint8_round_trip(
    tmp_path: Path, rng: np.random.Generator, shape: tuple[int, ...]
) -> None:
    array = rng.random(shape).astype(np.float32)
    out = save_image(tmp_path / "x.png", array)
    with Image.open(out) as img:
        back = np.asarray(img)
    np.testing.assert_array_equal(back, to_uint8(array))
    assert np.abs(back / 255.0 - array).max() <= 0.5 / 255 + 1e-6


def test_to_uint8_rounds_and_clips() -> None:
    got = to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(got, [0, 0, 128, 255, 255])


def test_nchw_round_trip(rng: np.random.Generator) -> None:
    image = rng.random((4, 6, 3))
    x = array_to_nchw(image)
    assert x.shape == (1, 3, 4, 6) and x.flags.c_contiguous
    np.testing.assert_array_equal(x[0, 1], image[:, :, 1])
    np.testing.assert_array_equal(nchw_to_array(x), image)
    gray = rng.random((4, 6))
    assert array_to_nchw(gray).shape == (1, 1, 4, 6)
    np.testing.assert_array_equal(nchw_to_array(array_to_nchw(gray)), gray)
    with pytest.raises(ValueError):
        array_to_nchw(np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError):
        nchw_to_array(np.zeros((2, 3, 4, 4)))


def test_list_images_expands_folders_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt", "sub/IMG_1.HEIC"):
        (tmp_path / name).write_bytes(b"x")
    found = list_images([tmp_path])
    want = ["a.JPG", "b.png", "sub/IMG_1.HEIC", "sub/c.webp"]
    assert [p.relative_to(tmp_path).as_posix() for p in found] == want
    assert list_images([tmp_path], recursive=False) == [tmp_path / "a.JPG", tmp_path / "b.png"]
    assert list_images([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]
