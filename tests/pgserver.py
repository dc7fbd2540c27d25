"""A real, throwaway PostgreSQL server for the tests and the service benchmark.

``start_postgres()`` runs ``initdb`` in a new temporary folder, starts the server with
``pg_ctl`` on 127.0.0.1 (a free port) and a unix socket in that folder, with trust
authentication for local connections and ``fsync=off`` (the tests never crash the database
server itself, only the service processes), and creates one database. ``PgServer.stop()``
stops it (``pg_ctl stop -m immediate``: its data is thrown away) and removes the folder.
PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as the ``postgres``
user (Debian's package creates it), else ``nobody``, in a folder that user owns.

Missing binaries are an error that says what to install, never a skip: the service's tests
exist to run against a real server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
    "`apt-get install -y postgresql` (Debian/Ubuntu) or set CNNKIT_PG_BINDIR"
)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server could not be found or started."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: $CNNKIT_PG_BINDIR, pg_config, or a glob."""
    candidates: list[str] = []
    if env := os.environ.get("CNNKIT_PG_BINDIR"):
        candidates.append(env)
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(out.stdout.strip())
    # Debian keeps the server binaries out of PATH, one folder per major version: newest first.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=_version_key, reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).parent))
    for c in candidates:
        d = Path(c)
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    raise PostgresUnavailable(INSTALL_HINT)


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit()) or (0,)


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and no `postgres` or `nobody` user to run as")


def _as_user(cmd: list[str], user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", user.pw_name, "--", *cmd]
    if shutil.which("setpriv"):
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            *cmd,
        ]
    raise PostgresUnavailable("running as root and neither runuser nor setpriv to drop privileges")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running throwaway server; ``url`` connects to its database over TCP loopback."""

    bindir: Path
    root: Path  # the temporary folder: data/, the socket and the log
    port: int
    dbname: str
    user: pwd.struct_passwd | None  # whom the server runs as (None: as ourselves)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.dbname}"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def create_database(self, dbname: str) -> str:
        """Create another database on this server (e.g. one per test); returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return self.url_for(dbname)

    def stop(self) -> None:
        """Stop the server and remove its folder.

        Immediate shutdown: no final checkpoint (the data is about to be deleted; a fast
        shutdown's checkpoint took 15 s at the end of a full test run on a busy machine).
        """
        if (self.root / "data" / "postmaster.pid").exists():
            subprocess.run(
                _as_user(
                    [str(self.bindir / "pg_ctl"), "stop", "-D", "data", "-m", "immediate", "-w"],
                    self.user,
                ),
                cwd=self.root,
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(dbname: str = "cnnkit_test", *, attempts: int = 3) -> PgServer:
    """initdb + start a server in a new temporary folder; returns it running, ``dbname`` created."""
    t0 = time.perf_counter()
    bindir = find_bindir()
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="cnnkit-pg-"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PgServer(bindir, root, 0, dbname, user)
    try:
        _check(
            [
                str(bindir / "initdb"),
                "-D",
                "data",
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            user,
            root,
            "initdb",
        )
        for attempt in range(attempts):
            # A free port can be taken between our check and the server's bind: try another.
            server.port = free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} "
                "-c fsync=off -c full_page_writes=off -c max_connections=200"
            )
            cmd = [str(bindir / "pg_ctl"), "start", "-D", "data", "-l", str(server.log), "-w"]
            cmd += ["-t", "60", "-o", opts]
            try:
                _check(cmd, user, root, "pg_ctl start")
                break
            except PostgresUnavailable:
                if attempt == attempts - 1:
                    raise
        server.create_database(dbname)
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.perf_counter() - t0
    return server


def _check(cmd: list[str], user: pwd.struct_passwd | None, cwd: Path, what: str) -> None:
    proc = subprocess.run(
        _as_user(cmd, user), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        log = cwd / "postgres.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PostgresUnavailable(
            f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n{tail}"
        )


@contextlib.contextmanager
def postgres_server(dbname: str = "cnnkit_test") -> Iterator[PgServer]:
    """``start_postgres`` as a context manager: the server is stopped and removed on exit."""
    server = start_postgres(dbname)
    try:
        yield server
    finally:
        server.stop()
