"""cnnkit.errors: the one-line message and the shortening of echoed user values."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnkit.errors import PATH_LIMIT, CnnkitError, shorten, show_path


def test_short_values_are_quoted_whole() -> None:
    assert shorten("Ada") == "'Ada'"
    assert shorten("x" * 60) == "'" + "x" * 60 + "'"
    assert shorten(Path("/tmp/a.jpg")) == "'/tmp/a.jpg'"


def test_long_values_are_cut_with_an_ellipsis_and_their_length() -> None:
    line = shorten("a" * 100_000)
    assert line == "'" + "a" * 59 + "…' (100000 characters)"
    assert len(line) < 100
    assert shorten("b" * 61, limit=10) == "'bbbbbbbbb…' (61 characters)"


def test_control_characters_cannot_break_the_line() -> None:
    line = shorten("Ada\nerror: forged\x1b[2J")
    assert "\n" not in line and "\x1b" not in line
    assert "\\n" in line


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        shorten("a", limit=0)


def test_error_message_with_a_shortened_value_is_one_short_line() -> None:
    err = CnnkitError(f"no person {shorten('z' * 5000)}", hint="cnnkit face list shows them")
    assert len(err.message.splitlines()) == 1
    assert len(err.message) < 140


def test_paths_stay_whole_up_to_the_limit_then_are_shortened() -> None:
    short = "/data/" + "p" * 150 + ".jpg"
    assert show_path(short) == short
    assert CnnkitError("no such file", path=short).message == f"{short}: no such file"
    long = "/data/" + "p" * 100_000
    assert show_path(long) == shorten(long, PATH_LIMIT)
    message = CnnkitError("no such file", path=Path(long)).message
    assert message.endswith("(100006 characters): no such file") and len(message) < 260
