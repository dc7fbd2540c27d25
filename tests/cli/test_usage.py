"""Usage errors and help: every argparse error of every command is one `error:` line (exit 2)
with a suggestion, and `cnnkit --help` lists each command on one line with examples."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from cnnkit.cli.main import _all_subparsers, build_parser, main


def _usage_error(capsys: pytest.CaptureFixture, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: "), lines[0]
    assert "usage:" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "wrong", "suggestion"),
    [
        (("edges", "x.jpg", "-k", "sobelx"), "sobelx", "sobel"),
        (("edges", "x.jpg", "--kernel", "vertcal"), "vertcal", "vertical"),
        (("edgse", "x.jpg"), "edgse", "edges"),
        (("face", "enrol", "Ada", "a.jpg"), "enrol", "enroll"),
        (("train", "lenet5", "--optimizer", "adm"), "adm", "adam"),
    ],
)
def test_invalid_choice_suggests_the_close_one(
    capsys: pytest.CaptureFixture, argv: tuple[str, ...], wrong: str, suggestion: str
) -> None:
    line = _usage_error(capsys, *argv)
    assert line.endswith(f"invalid choice {wrong!r} (did you mean {suggestion}?)"), line


def test_invalid_choice_without_a_close_one_lists_the_choices(capsys) -> None:
    line = _usage_error(capsys, "edges", "x.jpg", "-k", "qqqqqq")
    assert "(choose from vertical, horizontal, sobel, scharr, prewitt, laplacian)" in line


def test_a_huge_invalid_choice_is_shortened(capsys) -> None:
    line = _usage_error(capsys, "edges", "x.jpg", "-k", "z" * 100_000)
    assert "(100000 characters)" in line and len(line) < 300


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (("summary",), "cnnkit summary"),  # required argument missing
        (("predict", "--weights", "a.pt", "--top-k", "x", "y.png"), "cnnkit predict"),  # bad int
        (("evaluate", "--weights", "a.pt"), "cnnkit evaluate"),  # required group missing
        (("edges", "x.jpg", "--threshold", "abc"), "cnnkit edges"),
        (("summary", "lenet5", "--num-classes", "0"), "cnnkit summary"),  # type function
        (("summary", "lenet5", "--bogus"), "cnnkit summary"),  # unrecognized, after a command
        (("face", "list", "--bogus"), "cnnkit face list"),
        (("--bogus",), "cnnkit"),
        (("edges", "x.jpg", "-o"), "cnnkit edges"),  # expected one argument
    ],
)
def test_other_usage_errors_point_to_the_commands_help(
    capsys: pytest.CaptureFixture, argv: tuple[str, ...], command: str
) -> None:
    line = _usage_error(capsys, *argv)
    assert line.endswith(f" (see {command} --help)"), line


def test_real_process_prints_one_line(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "edges", "x.jpg", "-k", "sobelx"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == "error: argument -k/--kernel: invalid choice 'sobelx' (did you mean sobel?)\n"
    )


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_lists_every_command_on_one_line_with_examples() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    for name in _commands():
        row = [i for i, line in enumerate(lines) if line.startswith(f"    {name} ")]
        assert len(row) == 1, name
        description = lines[row[0]][4 + len(name) :].strip()
        assert description, name
        follower = lines[row[0] + 1]
        assert not follower.startswith(" " * 8) or follower.strip().split()[0] in _commands(), (
            f"{name}: its description wraps onto a second line"
        )
    epilog = done.stdout.split("Examples:", 1)[1]
    for name in _commands():
        assert f"cnnkit {name} " in epilog, f"no example of `cnnkit {name}` in `cnnkit --help`"


@pytest.mark.parametrize("name", list(_commands()))
def test_every_command_has_examples(name: str) -> None:
    parser = _commands()[name]
    assert re.search(r"^Examples?:$", parser.epilog or "", re.M), f"`cnnkit {name} --help`: none"
    assert f"cnnkit {name}" in parser.epilog


def test_every_parser_is_one_line_errors_class() -> None:
    parser = build_parser()
    kinds = {type(p) for p in [parser, *_all_subparsers(parser)]}
    assert kinds == {type(parser)} and type(parser) is not argparse.ArgumentParser
