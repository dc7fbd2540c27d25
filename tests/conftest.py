"""Shared test setup: offline, seeded, quiet, and small thread counts on 2-core machines."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("CNNKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.pgserver import PgServer, postgres_server  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded NumPy generator, so failures reproduce."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A real PostgreSQL server for the whole session (started as an unprivileged user if root)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PgServer) -> str:
    """A fresh, empty database on the session's server, for one test; its URL."""
    global _pg_databases
    _pg_databases += 1
    return postgres.create_database(f"t{_pg_databases}_{os.getpid()}")


_pg_databases = 0
