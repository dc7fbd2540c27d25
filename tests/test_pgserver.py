"""The test PostgreSQL server: it starts, answers, isolates databases, and goes away."""

from __future__ import annotations

import os

import psycopg

from tests.pgserver import PgServer, find_bindir, start_postgres


def test_server_answers_select_1(postgres: PgServer) -> None:
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)


def test_server_runs_unprivileged(postgres: PgServer) -> None:
    with psycopg.connect(postgres.url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    owner = os.stat(f"/proc/{row[0]}").st_uid
    assert owner != 0
    assert postgres.user is None or owner == postgres.user.pw_uid


def test_each_test_gets_an_empty_database(pg_url: str, postgres: PgServer) -> None:
    assert pg_url != postgres.url
    with psycopg.connect(pg_url) as conn:
        n = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert n == (0,)
        conn.execute("CREATE TABLE t (x int)")


def test_missing_binaries_say_what_to_install(monkeypatch) -> None:
    import pytest

    from tests import pgserver

    monkeypatch.setenv("CNNKIT_PG_BINDIR", "/nonexistent")
    monkeypatch.setattr(pgserver.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pgserver.shutil, "which", lambda name: None)
    with pytest.raises(pgserver.PostgresUnavailable, match="apt-get install -y postgresql"):
        find_bindir()


def test_stop_removes_the_folder_and_the_server() -> None:
    server = start_postgres("other")
    root, url = server.root, server.url
    assert (root / "data" / "PG_VERSION").exists()
    server.stop()
    assert not root.exists()
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")
