"""A flat image has no edges: float rounding noise (~1e-7) must not be stretched to full white."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.edges import detect, is_signed, to_display
from cnnkit.edges.kernels import KERNEL_NAMES

#: The picture of "no response": black magnitude maps, white signed maps.
_BLANK = {False: 0, True: 255}


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("level", [179, 85, 31, 255])
def test_flat_image_gives_a_blank_map(tmp_path: Path, kernel: str, level: int) -> None:
    pixels = _cli_edges(tmp_path, np.full((9, 11, 3), level, dtype=np.uint8), kernel)
    assert (pixels == _BLANK[is_signed(kernel)]).all(), np.unique(pixels)


def _cli_edges(tmp_path: Path, pixels: np.ndarray, kernel: str) -> np.ndarray:
    """``cnnkit edges`` of a PNG holding ``pixels``; the map it wrote."""
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(pixels).save(src)
    assert main(["-q", "edges", str(src), "-k", kernel, "-o", str(out)]) == 0
    with Image.open(out) as img:
        return np.asarray(img)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("level", [179, 31])
def test_one_pixel_image_gives_a_blank_map(tmp_path: Path, kernel: str, level: int) -> None:
    pixels = _cli_edges(tmp_path, np.full((1, 1, 3), level, dtype=np.uint8), kernel)
    assert pixels.shape[:2] == (1, 1)
    assert (pixels == _BLANK[is_signed(kernel)]).all()


@pytest.mark.parametrize("kernel", ["sobel", "scharr", "prewitt"])
@pytest.mark.parametrize("level", [179, 31])
def test_nearly_flat_image_shows_its_one_small_edge(kernel: str, level: int) -> None:
    # One pixel one grey level (1/255) brighter: a real edge, shown; the rest stays black.
    image = np.full((61, 61), level / 255, dtype=np.float32)
    image[30, 30] = (level + 1) / 255
    picture = to_display(detect(image, kernel), signed=False)
    assert picture[29:32, 29:32].max() == 255
    far = np.ones(picture.shape, bool)
    far[28:33, 28:33] = False
    assert (picture[far] == 0).all(), np.unique(picture[far])


def test_tolerance_follows_the_input_range() -> None:
    # A uint8-range image (0..255) with float noise: flat at value_range=255.
    image = np.full((8, 8), 179.0, dtype=np.float32)
    response = detect(image, "scharr")
    assert (to_display(response, signed=False, value_range=255.0) == 0).all()
    image[4, 4] = 180.0  # one level: an edge at that range
    assert to_display(detect(image, "scharr"), signed=False, value_range=255.0).max() == 255
    with pytest.raises(ValueError):
        to_display(response, signed=False, value_range=0.0)


def test_small_real_edges_of_a_float_image_survive() -> None:
    # A 16-bit step (1/65535) is well above float32 rounding: still an edge.
    image = np.full((8, 8), 0.5, dtype=np.float32)
    image[:, 4:] += 1 / 65535
    for kernel in ("sobel", "laplacian"):
        picture = to_display(detect(image, kernel), signed=is_signed(kernel))
        assert (picture != _BLANK[is_signed(kernel)]).any(), kernel
