"""`cnnkit style` end to end on small images: outputs, snapshots, errors, Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.io import load_image

FAST = [
    "--size", "40",
    "--iterations", "3",
    "--backbone", "random-vgg19",
    "--content-layer", "conv2_1",
    "--style-layers", "conv1_1,conv2_1",
]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("style")
    rng = np.random.default_rng(1)
    content = folder / "content.png"
    Image.fromarray((rng.random((30, 50, 3)) * 255).astype(np.uint8)).save(content)
    gray = folder / "gray.png"  # a grayscale style
    Image.fromarray((rng.random((24, 24)) * 255).astype(np.uint8), mode="L").save(gray)
    rgba = folder / "rgba.png"  # an RGBA style, taller than wide
    Image.fromarray((rng.random((40, 20, 4)) * 255).astype(np.uint8), mode="RGBA").save(rgba)
    return {"content": content, "gray": gray, "rgba": rgba, "dir": folder}


def test_cli_end_to_end(files) -> None:
    out = files["dir"] / "out.png"
    plot = files["dir"] / "loss.png"
    rc = main(
        ["style", str(files["content"]), str(files["gray"]), str(files["rgba"]), "-o", str(out)]
        + FAST
        + ["--save-every", "2", "--loss-plot", str(plot), "--style-blend-weights", "1,2"]
    )
    assert rc == 0
    assert load_image(out).shape == (24, 40, 3)
    assert (files["dir"] / "out-0002.png").exists()
    assert Image.open(plot).size[0] > 100


def test_cli_unknown_layer(files, capsys) -> None:
    rc = main(["style", str(files["content"]), str(files["gray"]), *FAST, "--content-layer", "x"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown layer name(s) x" in err and "conv5_4" in err


def test_cli_missing_weights_file(files, capsys) -> None:
    missing = files["dir"] / "vgg19-missing.pth"
    rc = main(["style", str(files["content"]), str(files["gray"]), "--weights", str(missing)])
    assert rc == 2
    assert "vgg19-missing.pth" in capsys.readouterr().err


def test_cli_weights_must_be_vgg19(files, capsys) -> None:
    base = ["style", str(files["content"]), str(files["gray"])]
    assert main([*base, "--weights", str(files["dir"] / "nonexistent.pth")]) == 2
    err = capsys.readouterr().err
    assert "nonexistent.pth: no such file" in err and "vgg19-dcbb9e9d.pth" in err
    assert "resnet101" not in err  # style takes no other architecture's weights
    assert main([*base, "--weights", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "style needs a VGG-19 checkpoint" in err and "resnet18" in err


def test_cli_empty_style_layers_is_an_error(files, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["style", str(files["content"]), str(files["gray"]), "--style-layers", ""])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--style-layers" in err and "conv5_4" in err


def test_cli_nan_message(files, capsys) -> None:
    out = files["dir"] / "nan.png"
    args = ["style", str(files["content"]), str(files["gray"]), "-o", str(out), *FAST]
    rc = main([*args, "--optimizer", "lbfgs", "--lr", "1e30"])
    assert rc == 2
    assert "lower --lr or --beta" in capsys.readouterr().err


def test_cli_ctrl_c_writes_the_image(files, monkeypatch, capsys) -> None:
    import importlib

    module = importlib.import_module("cnnkit.style.transfer")

    calls = {"n": 0}
    original = module._Objective.__call__

    def interrupted(self, G):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, G)

    monkeypatch.setattr(module._Objective, "__call__", interrupted)
    out = files["dir"] / "ctrl-c.png"
    args = ["style", str(files["content"]), str(files["gray"]), "-o", str(out), *FAST]
    rc = main([*args, "--iterations", "50"])
    assert rc == 130
    assert out.exists()
    assert "interrupted after 2 iterations" in capsys.readouterr().err
