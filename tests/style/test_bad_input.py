"""Bad input to `cnnkit style`, as a new user tries it: each a one-line error or a handled case."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.errors import CnnkitError
from cnnkit.io import load_image, sample_path
from cnnkit.style.config import StyleConfig, check_sizes, memory_estimate


def _one_line_error(capsys, words: str) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("size", ["16", "20"])
def test_gatys_small_size_is_refused_up_front(tmp_path, capsys, size) -> None:
    out = tmp_path / "out.png"
    args = ["style", str(sample_path("chelsea")), str(sample_path("coffee")), "-o", str(out)]
    assert main([*args, "--size", size]) == 2
    _one_line_error(capsys, "need at least 16 px on the short side")
    assert not out.exists()


def test_gatys_thin_images_get_the_size_that_works(tmp_path, capsys) -> None:
    content, style = tmp_path / "thin.png", tmp_path / "tall.png"
    Image.new("RGB", (400, 40), "red").save(content)
    Image.new("RGB", (30, 300), "blue").save(style)
    assert (
        main(["style", str(content), str(style), "--size", "64", "-o", str(tmp_path / "o.png")])
        == 2
    )
    _one_line_error(capsys, "would be 64x6 px at --size 64")


def test_gatys_suggested_size_works() -> None:
    """The --size the error suggests passes the check (chelsea is 451x300: 16 px needs 25)."""
    with pytest.raises(CnnkitError, match="use --size 25"):
        check_sizes(StyleConfig(size=20), (451, 300), [(600, 400)], [20], "conv5_1")
    check_sizes(StyleConfig(size=25), (451, 300), [(600, 400)], [25], "conv5_1")
    check_sizes(StyleConfig(size=25), (451, 300), [(600, 400)], [25], "conv3_1")  # 4 px suffice


def test_gatys_huge_size_is_refused_by_the_memory_estimate(tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    args = ["style", str(sample_path("chelsea")), str(sample_path("coffee")), "-o", str(out)]
    assert main([*args, "--size", "100000"]) == 2
    gib = memory_estimate((100000, 66519)) / 2**30
    _one_line_error(capsys, f"--size 100000 (100000x66519 px) needs about {gib:.1f} GiB")
    assert memory_estimate((512, 341)) < 2 * 2**30  # 512 px stays allowed
    # 2048 px runs checkpointed: under the 6 GB the issue allows (measured: docs/style.md)
    assert memory_estimate((2048, 2048)) < 6 * 2**30


_PEAK = """
import numpy as np
from cnnkit.style import transfer
rng = np.random.default_rng(0)
image, history = transfer(rng.random((60, 90, 3), dtype=np.float32),
                          rng.random((40, 40, 3), dtype=np.float32), size=128, iterations=3,
                          multiscale=True, init="content", backbone="random-vgg19")
assert history.scales == [(64, 3), (128, 1)], history.scales
# VmHWM, not ru_maxrss: Linux carries the forking parent's peak over into ru_maxrss after exec
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(image.shape[1], image.shape[0], peak * 1024)
"""


def test_gatys_memory_estimate_covers_the_multiscale_run() -> None:
    """A real 2-scale run (64 -> 128 px) in its own process stays under the estimate that
    check_sizes enforces for it."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _PEAK], capture_output=True, text=True, env=os.environ, check=True
    ).stdout.split()
    w, h, peak = (int(v) for v in out)
    assert (w, h) == (128, 85)
    assert peak < memory_estimate((w, h)), (peak, memory_estimate((w, h)))


def _bomb_png(path) -> None:
    """A PNG whose header claims 20000x20000 pixels (Pillow's guard refuses it at open)."""
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", 20000, 20000)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(2)
    base = (rng.random((60, 90, 3)) * 255).astype(np.uint8)
    paths = {}
    paths["gray"] = folder / "gray.png"
    Image.fromarray(base[:, :, 0], "L").save(paths["gray"])
    paths["gray16"] = folder / "gray16.png"
    Image.fromarray(base[:, :, 0].astype(np.uint16) * 257).save(paths["gray16"])
    assert Image.open(paths["gray16"]).mode.startswith("I")
    paths["cmyk"] = folder / "cmyk.jpg"
    Image.fromarray(base).convert("CMYK").save(paths["cmyk"])
    paths["rgba"] = folder / "rgba.png"
    rgba = np.dstack([base, (rng.random((60, 90)) * 255).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    paths["tiny"] = folder / "tiny.png"
    Image.fromarray(base[:8, :8]).save(paths["tiny"])
    paths["bomb"] = folder / "bomb.png"
    _bomb_png(paths["bomb"])
    paths["dir"] = folder
    return paths


@pytest.mark.parametrize("kind", ["gray", "gray16", "cmyk", "rgba"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_fast_takes_any_image_mode(odd_images, kind, role) -> None:
    out = odd_images["dir"] / f"{kind}-{role}.png"
    other = sample_path("coffee")
    content, style = (
        (odd_images[kind], other)
        if role == "content"
        else (sample_path("chelsea"), odd_images[kind])
    )
    rc = main(
        ["style", str(content), str(style), "--method", "fast", "--size", "96", "-o", str(out)]
    )
    assert rc == 0
    image = load_image(out)
    assert image.ndim == 3 and max(image.shape[:2]) == 96


@pytest.mark.parametrize(("kind", "words"), [("tiny", "too small"), ("bomb", "image too large")])
@pytest.mark.parametrize("role", ["content", "style"])
def test_fast_refuses_tiny_and_huge_images(odd_images, capsys, kind, words, role) -> None:
    out = odd_images["dir"] / f"never-{kind}-{role}.png"
    other = sample_path("coffee")
    content, style = (
        (odd_images[kind], other)
        if role == "content"
        else (sample_path("chelsea"), odd_images[kind])
    )
    assert main(["style", str(content), str(style), "--method", "fast", "-o", str(out)]) == 2
    _one_line_error(capsys, words)
    assert not out.exists()


def test_gatys_takes_a_16_bit_style(odd_images, tmp_path) -> None:
    out = tmp_path / "g.png"
    args = ["style", str(odd_images["cmyk"]), str(odd_images["gray16"]), "-o", str(out)]
    fast = ["--size", "32", "--iterations", "2", "--backbone", "random-vgg19"]
    assert (
        main([*args, *fast, "--content-layer", "conv2_1", "--style-layers", "conv1_1,conv2_1"]) == 0
    )
    assert load_image(out).shape == (21, 32, 3)
