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


def test_max_mpx_sets_the_pixel_limit(tmp_path: Path) -> None:
    import httpx

    from tests.face.shipped import grace
    from tests.serve.conftest import is_problem, png
    from tests.serve.server import make_key, start_server

    done = cnnkit("serve", "--max-mpx", "100", check=False)
    assert done.returncode == 2 and "at most 89" in done.stderr
    db = str(tmp_path / "s.sqlite3")
    key = make_key(db, "query")
    server = start_server(db, tmp_path / "logs", "--max-mpx", "0.3")  # grace: 512x600 = 0.31
    try:
        r = httpx.post(
            f"{server.url}/api/v1/detect",
            files={"file": ("grace.png", png(grace()))},
            headers={"X-API-Key": key},
            timeout=60,
        )
        detail = is_problem(r, 413, "too-large")["detail"]
        assert "512x600 = 307,200 pixels, over the limit of 300,000" in detail
    finally:
        server.stop()
