"""`cnnkit style --method fast`: images, built-in styles, the sheet, videos and bad input."""

from __future__ import annotations

import argparse
from dataclasses import fields

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.io import load_image, sample_path
from tests.isa import run_forced


def _write_video(path, frames: int = 4, size=(96, 64)) -> None:
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            a = np.zeros((h, w, 3), np.uint8)
            a[:, (i * 9) % w : (i * 9) % w + 16] = 255
            a[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, "rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("fast")
    content = folder / "content.png"
    Image.open(sample_path("chelsea")).resize((120, 80)).save(content)
    clip = folder / "clip.mp4"
    _write_video(clip)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    text = folder / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    return {"dir": folder, "content": content, "clip": clip, "empty": empty, "text": text}


def test_fast_image_and_options(files) -> None:
    out = files["dir"] / "out.png"
    style = str(sample_path("coffee"))
    assert main(["style", str(files["content"]), style, "--method", "fast", "-o", str(out)]) == 0
    assert load_image(out).shape == (80, 120, 3)
    args = ["style", str(files["content"]), style, str(sample_path("rocket")), "--method", "fast"]
    more = ["--style-blend-weights", "2,1", "--strength", "0.5", "--preserve-colors"]
    rc = main([*args, *more, "--size", "96", "--fast-size", "64", "-o", str(out)])
    assert rc == 0 and load_image(out).shape == (64, 96, 3)


def test_fast_built_in_styles_and_sheet(files, capsys) -> None:
    out = files["dir"] / "id.png"
    rc = main(
        ["style", str(files["content"]), "--method", "fast", "--style-id", "3,7", "-o", str(out)]
    )
    assert rc == 0 and load_image(out).shape == (80, 120, 3)
    sheet = files["dir"] / "sheet.png"
    assert main(["style", str(files["content"]), "--list-styles", "--sheet", str(sheet)]) == 0
    assert "26 built-in styles" in capsys.readouterr().out
    w, h = Image.open(sheet).size
    assert w > 7 * 100 and h > 4 * 60  # 27 tiles of 160x107 in 7 columns


def test_fast_video_frame_by_frame(files) -> None:
    import av

    out = files["dir"] / "out.mp4"
    style = str(sample_path("coffee"))
    assert main(["style", str(files["clip"]), style, "--method", "fast", "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (64, 96, 3)
    # the same style on frame 0 as an image: the video frame matches it (up to the codec)
    first = files["dir"] / "first.png"
    with av.open(str(files["clip"])) as container:
        next(container.decode(video=0)).to_image().save(first)
    still = files["dir"] / "still.png"
    assert main(["style", str(first), style, "--method", "fast", "-o", str(still)]) == 0
    assert np.abs(frames[0] / 255.0 - load_image(still)).mean() < 0.05


@pytest.mark.parametrize(
    ("name", "words"), [("empty", "not a readable video"), ("text", "not a readable video")]
)
def test_bad_videos_leave_nothing(files, capsys, name, words) -> None:
    out = files["dir"] / f"bad-{name}.mp4"
    rc = main(
        ["style", str(files[name]), str(sample_path("coffee")), "--method", "fast", "-o", str(out)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert not [p for p in files["dir"].iterdir() if p.name.startswith(f".bad-{name}")]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--style-id", "99"], "no built-in style 99"),
        (["--size", "100000"], "--size 100000 is out of range"),
        (["--fast-size", "16"], "--fast-size 16 is out of range"),
        (["--strength", "2"], "strength must be between 0 and 1"),
    ],
)
def test_fast_bad_options_are_one_line(files, capsys, extra, words) -> None:
    out = files["dir"] / "never.png"
    args = ["style", str(files["content"]), "--method", "fast", "-o", str(out)]
    if "--style-id" not in extra:
        args.insert(2, str(sample_path("coffee")))
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_image_to_video_suffix_is_refused(files, capsys) -> None:
    out = files["dir"] / "wrong.mp4"
    args = ["style", str(files["content"]), str(sample_path("coffee")), "--method", "fast"]
    assert main([*args, "-o", str(out)]) == 2
    assert "the output must be an image" in capsys.readouterr().err


def test_the_precision_note_says_whether_bf16_is_native() -> None:
    import torch

    from cnnkit.cli.style import _precision_note
    from cnnkit.cpu import bf16_native

    cap = torch.backends.cpu.get_cpu_capability()
    kind = "native" if bf16_native() else "non-native"
    assert _precision_note("bf16") == f"bf16 ({kind} bf16, {cap})"
    assert _precision_note("fp32") == f"fp32 (no bf16 autocast, {cap})"
    code = "from cnnkit.cli.style import _precision_note; print(_precision_note('bf16'))"
    out = run_forced(code, ATEN_CPU_CAPABILITY="avx2")  # bf16 not native to ATen on any CPU
    assert out.stdout.strip() == "bf16 (non-native bf16, AVX2)"


def test_gatys_config_comes_from_the_fields() -> None:
    from cnnkit.cli.style import gatys_config
    from cnnkit.style import StyleConfig

    parser = argparse.ArgumentParser()
    from cnnkit.cli import style as cli_style

    cli_style.register(parser.add_subparsers())
    args = parser.parse_args(["style", "c.png", "s.png", "--alpha", "3", "--per-layer"])
    config = gatys_config(args)
    assert config.alpha == 3.0 and config.per_channel is False and config.size == 512
    named = {f.name for f in fields(StyleConfig)} & set(vars(args))
    assert len(named) >= 25  # every option the CLI has travels by name


def test_fast_batch_of_images(files, capsys) -> None:
    folder = files["dir"] / "batch"
    folder.mkdir()
    for name in ("a", "b"):
        Image.open(files["content"]).save(folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out = files["dir"] / "batch-out"
    args = ["style", str(folder), str(sample_path("coffee")), "--method", "fast", "-o", str(out)]
    assert main(args) == 2  # one unreadable image: reported, the others written
    assert "broken.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert load_image(out / "a.png").shape == (80, 120, 3)
