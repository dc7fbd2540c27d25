"""`cnnkit train`, `cnnkit predict` and `cnnkit evaluate` end to end through the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit.cli.main import main


def test_predict_prints_topk_csv(trained_ckpt: Path, shapes_dir: Path, capsys) -> None:
    images = [shapes_dir / "circle" / "circle00.png", shapes_dir / "triangle" / "triangle03.png"]
    code = main(["predict", "--model", "lenet5_modern", "--weights", str(trained_ckpt)]
                + [str(p) for p in images] + ["--top-k", "2"])  # fmt: skip
    assert code == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "rank", "class", "probability"]
    assert len(rows) == 1 + 2 * 2
    for path, block in zip(images, (rows[1:3], rows[3:5]), strict=True):
        assert [r[0] for r in block] == [str(path)] * 2 and [r[1] for r in block] == ["1", "2"]
        probs = [float(r[3]) for r in block]
        assert probs[0] >= probs[1] and 0 < sum(probs) <= 1 + 1e-6
        assert {r[2] for r in block} <= {"circle", "square", "triangle"}


def test_evaluate_prints_accuracy_and_writes_confusion_png(
    trained_ckpt: Path, shapes_dir: Path, tmp_path: Path, capsys
) -> None:
    png = tmp_path / "cm.png"
    code = main(["evaluate", "--weights", str(trained_ckpt), "--data", str(shapes_dir),
                 "--confusion", str(png)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("accuracy ")
    correct, total = out.split("(")[1].split(")")[0].split("/")
    assert int(total) == 36 and int(correct) > 12  # better than chance on 3 classes
    matrix_lines = out.splitlines()[3:6]
    counts = np.array([[int(v) for v in line.split()[1:]] for line in matrix_lines])
    assert counts.shape == (3, 3) and counts.sum() == 36 and np.trace(counts) == int(correct)
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size[0] > 100


def test_cli_errors_are_one_line(tmp_path: Path, trained_ckpt: Path, capsys) -> None:
    assert main(["train", "lenet5", "--data", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "x.pt")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "error:" in err and "no such folder" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["train", "lenet5", "--data", str(tmp_path / "empty")]) == 2
    assert "no class subfolders" in capsys.readouterr().err
    code = main(["predict", "--model", "lenet5", "--weights", str(trained_ckpt), "x.png"])
    assert code == 2 and "not a 'lenet5'" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tmp_path / "none.pt"), "--dataset", "digits"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    code = main(["train", "resnet18", "--dataset", "digits", "--engine", "numpy", "--out",
                 str(tmp_path / "y.pt"), "--image-size", "32"])  # fmt: skip
    assert code == 2 and "--engine numpy trains" in capsys.readouterr().err
