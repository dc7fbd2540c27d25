"""The API-key queries of :class:`~cnnkit.serve.storage.sql.SQLStorage`, in portable SQL.

A key's secret is ``cnk_`` and 256 random bits; only its sha256 is stored (``api_keys.hash``),
so a leaked database does not leak keys. Creating and revoking a key is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.face.gallery import check_name
from cnnkit.serve.storage.base import ROLES, KeyRow, now

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from cnnkit.serve.storage.sql import Tx

KEY_PREFIX = "cnk_"

_KEY_COLUMNS = "k.id, k.role, g.name, k.label, k.created_at, k.revoked_at"


def hash_secret(secret: str) -> str:
    """sha256 hex of an API key: keys are 256-bit random, so a plain hash is enough."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyQueries:
    """Mixin of :class:`~cnnkit.serve.storage.sql.SQLStorage` (uses its reads and writes)."""

    if TYPE_CHECKING:  # provided by SQLStorage

        def _write(self) -> AbstractContextManager[Tx]: ...

        def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

        def _gallery_id(self, tx: Tx, gallery: str, *, create: bool = True) -> int: ...

    def create_key(self, role: str, gallery: str, label: str | None = None) -> tuple[KeyRow, str]:
        if role not in ROLES:
            raise CnnkitError(f"unknown role {role!r}", hint="use one of: " + ", ".join(ROLES))
        gallery = check_name(gallery)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            (kid,) = tx.one(
                "INSERT INTO api_keys(hash, role, gallery_id, label, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (hash_secret(secret), role, gid, label, now()),
            )
            tx.audit(gid, "key.create", None, None, f"key {kid} ({role})")
        return self._key(int(kid)), secret

    def _key(self, key_id: int) -> KeyRow:
        rows = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN galleries g ON g.id = k.gallery_id"
            " WHERE k.id = ?",
            (key_id,),
        )
        if not rows:
            raise NotFoundError(f"no key with id {key_id}", hint="see them: cnnkit serve keys list")
        return KeyRow(int(rows[0][0]), *rows[0][1:])

    def key_for_secret(self, secret: str) -> KeyRow | None:
        rows = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN galleries g ON g.id = k.gallery_id"
            " WHERE k.hash = ? AND k.revoked_at IS NULL",
            (hash_secret(secret),),
        )
        return KeyRow(int(rows[0][0]), *rows[0][1:]) if rows else None

    def list_keys(self) -> list[KeyRow]:
        rows = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k JOIN galleries g ON g.id = k.gallery_id"
            " ORDER BY k.id"
        )
        return [KeyRow(int(r[0]), *r[1:]) for r in rows]

    def revoke_key(self, key_id: int) -> KeyRow:
        key = self._key(int(key_id))
        with self._write() as tx:
            tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now(), key.id),
            )
            gid = self._gallery_id(tx, key.gallery)
            tx.audit(gid, "key.revoke", None, None, f"key {key.id}")
        return self._key(key.id)
