"""The command's own behaviour: global flags anywhere, OS errors as one line, demo sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnkit.cli.main import build_parser, main
from cnnkit.progress import is_quiet, set_quiet


@pytest.fixture(autouse=True)
def _restore_quiet():
    before = is_quiet()
    yield
    set_quiet(before)


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "--debug", "summary", "lenet5"],
        ["summary", "lenet5", "-q", "--debug"],
        ["face", "list", "--quiet", "--debug"],
    ],
)
def test_global_flags_work_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.debug is True


def test_global_flags_default_off_after_a_command() -> None:
    args = build_parser().parse_args(["summary", "lenet5"])
    assert args.quiet is False and args.debug is False


def test_os_error_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # The person database's folder cannot be made: its parent is a file (FileExistsError).
    from cnnkit.io import sample_path

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(
        ["face", "enroll", "Ada", str(sample_path("grace_hopper")), "--db", str(blocker / "f.db")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: "), err
    assert str(blocker) in err and "(check the path and its permissions)" in err
    assert len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "x"


def test_unwritable_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cnnkit.io import sample_path

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "edges.png"
    code = main(["edges", str(sample_path("camera")), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {out}: cannot write the output: "), err
    assert len(err.strip().splitlines()) == 1


def test_demo_refuses_empty_sections(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["demo", "--out", str(tmp_path), "--sections", " , "])
    assert code == 2
    assert "--sections is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "lenet5", "--dataset", "digits", "--epochs", "1", "--out"],
        ["evaluate", "--dataset", "digits", "--weights", "missing.pt", "--confusion"],
    ],
)
def test_unwritable_output_fails_before_the_work(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "out.file"
    code = main([*argv, str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {out}: cannot write the output: "), err


@pytest.mark.parametrize("option", ["-o", "--loss-plot"])
def test_style_checks_its_outputs_before_the_optimisation(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from cnnkit.io import sample_path

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = blocker / "out.png"
    outputs = {"-o": str(tmp_path / "ok.png"), "--loss-plot": str(tmp_path / "loss.png")}
    outputs[option] = str(bad)
    argv = ["style", str(sample_path("chelsea")), str(sample_path("brick")), "--size", "32"]
    for flag, value in outputs.items():
        argv += [flag, value]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {bad}: cannot write the output: "), err
    assert not (tmp_path / "ok.png").exists()
