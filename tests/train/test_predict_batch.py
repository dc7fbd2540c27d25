"""`cnnkit predict` on a folder with an unreadable file: the others are still predicted."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

from cnnkit.cli.main import main


def test_predict_folder_skips_unreadable_files_and_exits_2(
    trained_ckpt: Path, shapes_dir: Path, capsys
) -> None:
    folder = shapes_dir / "circle"  # 12 PNGs and broken.png
    code = main(["predict", "--weights", str(trained_ckpt), str(folder),
                 str(shapes_dir / "square" / "empty.jpg"), "--top-k", "1"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["file", "rank", "class", "probability"]
    predicted = sorted(Path(r[0]).name for r in rows[1:])
    assert predicted == [f"circle{i:02d}.png" for i in range(12)]
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "broken.png" in warnings[0] + warnings[1] and "empty.jpg" in warnings[0] + warnings[1]
    assert "2 of 14 file(s) could not be read" in err and "Traceback" not in err


def test_predict_all_readable_exits_0(trained_ckpt: Path, shapes_dir: Path, capsys) -> None:
    images = [str(shapes_dir / "square" / f"square{i:02d}.png") for i in range(3)]
    assert main(["predict", "--weights", str(trained_ckpt), *images, "--top-k", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4 and "warning" not in err


def test_predict_help_documents_exit_codes(capsys) -> None:
    with contextlib.suppress(SystemExit):
        main(["predict", "--help"])
    text = capsys.readouterr().out
    assert "Exit codes" in text and "2 some file could not be read" in text
