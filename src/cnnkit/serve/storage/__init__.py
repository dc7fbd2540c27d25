"""Storage of the service: one interface (``base.Storage``), SQLite and PostgreSQL backends.

``open_storage(db)`` picks the backend from ``--db``: ``postgresql://...`` (or ``postgres://``)
-> PostgreSQL (``storage/postgres.py``), anything else -> a SQLite file (default
``serve.sqlite3`` in the user data dir).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from cnnkit.errors import DependencyError
from cnnkit.serve.storage.base import (
    ROLES,
    AuditRow,
    Change,
    Conflict,
    GalleryVectors,
    KeyRow,
    PersonRow,
    PhotoRow,
    Storage,
)

__all__ = [
    "ROLES",
    "AuditRow",
    "Change",
    "Conflict",
    "GalleryVectors",
    "KeyRow",
    "PersonRow",
    "PhotoRow",
    "Storage",
    "is_postgres_url",
    "open_storage",
]


def is_postgres_url(db: str | Path | None) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_storage(db: str | Path | None = None) -> Storage:
    """The storage named by ``--db``: a PostgreSQL URL, a SQLite path, or None (the default)."""
    if is_postgres_url(db):
        try:
            module = importlib.import_module("cnnkit.serve.storage.postgres")
        except ImportError as exc:
            raise DependencyError(
                f"the PostgreSQL backend is not available ({exc})",
                hint="pip install 'cnnkit[serve]' (psycopg 3 and psycopg-pool)",
            ) from exc
        return module.PostgresStorage(str(db))
    from cnnkit.serve.storage.sqlite import SQLiteStorage

    return SQLiteStorage(db)
