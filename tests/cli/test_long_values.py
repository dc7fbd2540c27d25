"""A huge value typed by the user (a pasted file, a runaway script) is echoed shortened: the
error stays one line of reasonable length and says how long the value was."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnkit.cli.main import main

_HUGE = "z" * 100_000


def _error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # usage errors (argparse)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err[:500]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["summary", _HUGE],
        ["summary", "lenet5", "--input", _HUGE],
        ["summary", "lenet5", "--input", "3x" + "9" * 100_000],
        ["summary", "lenet5", "--num-classes", _HUGE],
        ["models", _HUGE],
        ["edges", "x.jpg", "-k", _HUGE],
        ["edges", "x.jpg", "--threshold", _HUGE],
        ["train", _HUGE, "--dataset", "digits", "--epochs", "1"],
        ["train", "lenet5", "--dataset", "digits", "--engine", _HUGE],
        ["predict", "--weights", "a.pt", "--top-k", _HUGE, "x.png"],
        ["style", "c.jpg", "s.jpg", "--layers", " , " * 30_000],
        ["style", "c.jpg", "s.jpg", "--style-weights", _HUGE],
        [_HUGE],
        ["summary", "lenet5", _HUGE],
    ],
)
def test_huge_values_are_shortened(capsys: pytest.CaptureFixture, argv: list[str]) -> None:
    line = _error_line(capsys, argv)
    assert len(line) < 600, line[:300]


def test_huge_paths_are_shortened(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    name = "p" * 100_000 + ".jpg"
    for argv in (
        ["edges", name],
        ["predict", "--weights", name, "x.png"],
        ["evaluate", "--weights", name, "--dataset", "digits"],
    ):
        line = _error_line(capsys, argv)
        assert len(line) < 600 and "(100004 characters)" in line, line[:300]


def test_short_paths_stay_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = "q" * 150 + ".jpg"  # under the 200-character limit: whole, unquoted
    line = _error_line(capsys, ["edges", path])
    assert line.startswith(f"error: {path}: "), line
