"""A closed stdout (`cnnkit summary resnet152 | head -c 100`) ends the command quietly, as
Unix tools do: no `error:` line, no traceback, no "Exception ignored" noise at shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run_into_closed_pipe(tmp_path: Path, *argv: str) -> tuple[int, str]:
    """Run ``python -m cnnkit ARGV`` with stdout a real pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `head` having exited: every write gets EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cnnkit", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ("summary", "resnet152"),  # large output, written by a command
        ("models",),
        ("--help",),  # written by argparse, which exits through SystemExit
        ("summary", "--help"),
    ],
)
def test_closed_stdout_ends_quietly(tmp_path: Path, argv: tuple[str, ...]) -> None:
    code, err = _run_into_closed_pipe(tmp_path, *argv)
    assert err == "", err
    # 128 + SIGPIPE, what a shell reports for `yes | head`; argparse's help printer itself
    # ignores a failed write and exits 0, which is quiet too.
    assert code == (0 if "--help" in argv else 141)


def test_reader_that_stops_early_gets_the_start_of_the_output(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "summary", "resnet152", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(100)  # `head -c 100`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert len(head) == 100
    assert err == "", err
    assert code in (0, 141)  # 0 when all output fitted in the pipe before the reader left
