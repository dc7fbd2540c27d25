"""`cnnkit face ... --detector hog|cnn|hog+cnn|auto --precision auto|fp32|bf16|int8` end to end.

The photo is the shipped Grace Hopper face turned by 50 degrees: HOG misses it, the CNN finds it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.face.detectors import detect_with
from cnnkit.face.precision import resolve_precision
from tests.face.shipped import grace

UP = ["--upsample", "0"]


@pytest.fixture(scope="module")
def turned(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("turned") / "turned.png"
    face = grace().crop((120, 80, 420, 380)).rotate(50, resample=Image.Resampling.BILINEAR)
    face.resize((150, 150)).save(path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["face", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_detect_with_each_detector(turned, capsys):
    code, out, err = run(capsys, "detect", str(turned), *UP, "--detector", "hog")
    assert code == 0 and out.strip() == "file,top,right,bottom,left" and "no face found" in err
    image = np.asarray(Image.open(turned).convert("RGB"))
    want = [f"{turned},{','.join(map(str, b))}" for b in detect_with(image, 0, "cnn").boxes]
    assert len(want) == 1
    for choice in (["--detector", "cnn"], ["--detector", "hog+cnn"], []):  # [] = auto: the CNN
        code, out, _ = run(capsys, "detect", str(turned), *UP, *choice)
        assert code == 0 and out.strip().splitlines()[1:] == want, choice


def test_auto_says_which_detector_it_used(turned, capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger="cnnkit.face.detectors"):
        code, out, _ = run(capsys, "detect", str(turned), *UP, "--detector", "auto")
    assert code == 0 and len(out.strip().splitlines()) == 2  # the CNN found the face
    assert "face detector auto: using cnn" in caplog.text


def test_enroll_and_verify_with_the_cnn_and_auto_precision(turned, tmp_path, capsys, caplog):
    db = str(tmp_path / "faces.sqlite3")
    code, _, err = run(capsys, "enroll", "Grace", str(turned), "--db", db, *UP, "--detector", "hog")
    assert code == 2 and "no face" in err  # HOG misses the turned face
    with caplog.at_level(logging.INFO, logger="cnnkit.face.precision"):
        code, out, _ = run(
            capsys, "enroll", "Grace", str(turned), "--db", db, *UP, "--detector", "cnn",
            "--precision", "auto",
        )  # fmt: skip
    assert code == 0 and "Grace now has 1 photo(s)" in out
    assert f"precision auto: {resolve_precision('auto', 'cpu')}" in caplog.text
    code, out, _ = run(capsys, "verify", str(turned), "--as", "Grace", "--db", db, *UP,
                       "--detector", "cnn")  # fmt: skip
    assert code == 0 and out.startswith("match ")
    assert float(out.split()[1]) < 0.3  # same photo; auto's precision vs fp32


def test_bad_choices_are_usage_errors(turned, capsys):
    for argv in (
        ["detect", str(turned), "--detector", "yolo"],
        ["verify", str(turned), "--as", "X", "--precision", "fp16"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["face", *argv])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith("error: argument")
        assert "cnn" in err or "bf16" in err  # the choices, or "did you mean bf16?"
