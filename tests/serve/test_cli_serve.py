"""``cnnkit serve`` as a command: help with examples, one-line errors before uvicorn starts."""

from __future__ import annotations

from pathlib import Path

from tests.serve.server import cnnkit


def test_help_has_examples() -> None:
    for args in (("serve",), ("serve", "keys"), ("serve", "keys", "create")):
        out = cnnkit(*args, "--help").stdout
        assert "Examples:" in out and "cnnkit serve" in out


def test_a_bad_db_is_a_one_line_error(tmp_path: Path) -> None:
    done = cnnkit("serve", "--db", str(tmp_path), check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path}: is a folder, not a database file"
    not_ours = tmp_path / "other.sqlite3"
    import sqlite3

    sqlite3.connect(not_ours).execute("CREATE TABLE t (x)").connection.commit()
    done = cnnkit("serve", "keys", "list", "--db", str(not_ours), check=False)
    assert done.returncode == 2 and "not a cnnkit serve database" in done.stderr
    done = cnnkit("serve", "--workers", "0", check=False)
    assert done.returncode == 2 and "at least 1" in done.stderr
