"""The service's storage interface: what a backend (SQLite, PostgreSQL) must implement.

One database holds, for every **gallery** (a namespace of persons, like CompreFace's face
collections; a key belongs to one gallery and sees only its persons):

- ``persons``: id (unique across galleries), name (unique within its gallery), created_at;
- ``photos``: the descriptor (d float32 values, little endian) of each enrolled photo, its file's
  sha256 and an optional source label. Never the image: faces are biometric data;
- ``gallery_meta``: per gallery ``model_id`` and ``dim`` (the encoder that made its
  descriptors, fixed at the first photo), ``pipeline`` (how they were made,
  :mod:`cnnkit.face.descriptors`; fixed at the first photo too; a gallery from before it was
  recorded holds :data:`LEGACY_PIPELINE` descriptors), ``tau`` (the calibrated pair
  tolerance, for verify) and the ``tau_identification*`` keys (the 1:N threshold for
  identify, the FPIR and gallery size it was chosen for and its score; the same keys and text
  as ``cnnkit face``'s database, :mod:`cnnkit.face.gallery_meta`);
- ``api_keys``: id, sha256 of the secret (never the secret), role, gallery, created/revoked;
- ``audit``: who (key id, never the key) did what (action) to which person, when; no images;
- ``changes``: the **change feed**, ``(seq, gallery, kind, person_id)``, one row appended by
  every write in the same transaction as the write. ``seq`` is monotonic *in commit order*:
  a follower that has applied everything up to ``seq = s`` and then reads ``seq > s`` never
  misses a row. Replicas keep their search index in memory and follow this feed.

How to write a backend
======================
:class:`SQLStorage` (``storage/sql.py``, the API-key queries in ``storage/keys.py``) holds every
query, written once in portable SQL with ``?`` placeholders and ``RETURNING id``. A backend
subclasses it and provides only:

``SCHEMA`` (class attribute)
    The DDL (statements separated by ``;``) creating the tables above with the column names
    used in ``sql.py`` and ``keys.py``; identity/serial ids, BLOB/BYTEA for vectors.
``_connection()`` (context manager -> connection)
    A DB-API connection for one unit of work, with ``.execute(sql, params) -> cursor``
    (``fetchone``/``fetchall``). SQLite: one connection per thread; psycopg: a pool.
``_begin(con)`` / ``_commit(con)`` / ``_rollback(con)``
    Open, commit and abandon one write transaction. SQLite: ``BEGIN IMMEDIATE`` (one writer at a
    time, so the feed is gap-free). PostgreSQL: ``BEGIN`` and then *serialise feed appends*
    (e.g. ``SELECT pg_advisory_xact_lock(...)`` before the first insert), or a follower could
    read seq 7 before seq 6 commits and miss 6 forever.
``_sql(text)``
    Rewrite a query for the driver's placeholder style (``?`` -> ``%s`` for psycopg).
``_translate()`` (context manager)
    Turn driver errors into :class:`cnnkit.errors.DatabaseError` (one line, with a hint), and a
    unique-constraint violation into :class:`Conflict`.
``_after_commit(con, changes)`` (optional)
    Called after a write commits with its feed rows (e.g. ``NOTIFY`` for LISTEN/NOTIFY).
``ping()``, ``close()``, ``describe()``
    Readiness probe, release everything, and a one-line name for logs (no password).

Everything else (persons, photos, keys, audit, the feed, loading a gallery's vectors for the
in-memory index) is inherited. ``open_storage(url)`` (``storage/__init__.py``) picks the backend
from the ``--db`` value: ``postgresql://...`` or ``postgres://...`` -> PostgreSQL, anything
else a SQLite file path.

Every write method takes ``actor`` (the key id, or None for the command line) and records one
audit row and one feed row per changed person in the same transaction as the change.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cnnkit.errors import CnnkitError, DatabaseError
from cnnkit.face.gallery_meta import IdentificationTau

Role = Literal["admin", "enroll", "query"]
ROLES: tuple[str, ...] = ("admin", "enroll", "query")

#: Change-feed kinds (the ``kind`` column of ``changes``).
PERSON_CREATED = "person_created"
PERSON_RENAMED = "person_renamed"
PERSON_DELETED = "person_deleted"
PHOTOS_ADDED = "photos_added"
PHOTO_DELETED = "photo_deleted"
META_CHANGED = "meta_changed"


#: The gallery meta keys of the 1:N threshold (as in ``cnnkit face``'s database).
IDENTIFICATION_KEYS = (
    "tau_identification",
    "tau_identification_fpir",
    "tau_identification_gallery",
    "tau_identification_norm",
)


#: The pipeline of a gallery's descriptors when it records none: every photo the service enrolled
#: before the ``pipeline`` key existed was made with this one (the default then).
LEGACY_PIPELINE = "subpixel+flip"


def gallery_pipeline(meta: dict[str, str]) -> str | None:
    """The pipeline of a gallery's descriptors from its meta; None for a gallery without any."""
    if "pipeline" in meta:
        return meta["pipeline"]
    return LEGACY_PIPELINE if "model_id" in meta else None


def identification_meta(ident: IdentificationTau) -> dict[str, str]:
    """The meta values of a 1:N threshold, as text (what ``Gallery.set_identification_tau``
    writes); raises CnnkitError for a value that cannot be one."""
    from cnnkit.face.openset import NORMS

    if not np.isfinite(ident.tau) or ident.tau <= 0:
        raise CnnkitError(f"tau must be a positive number, got {ident.tau}")
    if not 0 < ident.fpir < 1:
        raise CnnkitError(f"fpir must be in (0, 1), got {ident.fpir}")
    if ident.gallery_size < 1:
        raise CnnkitError(f"gallery_size must be at least 1, got {ident.gallery_size}")
    if ident.norm not in NORMS:
        raise CnnkitError(f"unknown score {ident.norm!r}", hint=f"use one of {', '.join(NORMS)}")
    values = (repr(float(ident.tau)), repr(float(ident.fpir)), str(int(ident.gallery_size)))
    return dict(zip(IDENTIFICATION_KEYS, (*values, ident.norm), strict=True))


def read_identification(meta: dict[str, str]) -> IdentificationTau | None:
    """The 1:N threshold of a gallery's meta, or None when not calibrated."""
    tau, fpir, size, norm = (meta.get(k) for k in IDENTIFICATION_KEYS)
    if tau is None:
        return None
    return IdentificationTau(float(tau), float(fpir or "nan"), int(size or 0), norm or "none")


class Conflict(CnnkitError):
    """A write that breaks a uniqueness rule (a name already taken in that gallery)."""


class ModelMismatch(DatabaseError):
    """Descriptors of another encoder (or dimension) than the gallery holds."""


def now() -> str:
    """UTC time as ISO 8601 seconds, the format every ``*_at`` column holds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PersonRow:
    """One person of a gallery."""

    id: int
    name: str
    photos: int  # number of enrolled photos (descriptors)
    created_at: str


@dataclass(frozen=True)
class PhotoRow:
    """One enrolled photo: its descriptor's id, the file's sha256, an optional label."""

    id: int
    person_id: int
    sha256: str | None
    source: str | None
    created_at: str


@dataclass(frozen=True)
class KeyRow:
    """An API key as stored: never the secret, only its hash."""

    id: int
    role: str
    gallery: str
    label: str | None
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str
    key_id: int | None
    gallery: str
    action: str
    person_id: int | None
    detail: str | None


@dataclass(frozen=True)
class Change:
    """One row of the change feed."""

    seq: int
    gallery: str
    kind: str
    person_id: int | None


@dataclass(frozen=True)
class GalleryVectors:
    """Every descriptor of a gallery (or of some persons), for the in-memory index.

    ``vectors`` (K, d) float32; ``person_ids`` (K,) int64; ``names`` person id -> name for the
    persons asked (including those with no photo yet).
    """

    vectors: np.ndarray
    person_ids: np.ndarray
    names: dict[int, str]


@dataclass(frozen=True)
class ImportPerson:
    """One person to copy into a gallery (``cnnkit serve import``): (n, d) float32 descriptors,
    and the file sha256 and source label of each (None where unknown)."""

    name: str
    vectors: np.ndarray
    sha256s: Sequence[str | None]
    sources: Sequence[str | None]


@dataclass(frozen=True)
class ImportCounts:
    """What :meth:`Storage.import_persons` changed."""

    persons_created: int
    persons_merged: int  # existing persons that got photos (``merge``)
    persons_unchanged: int  # existing persons who already had every photo
    photos_added: int
    photos_skipped: int  # already in the gallery (same sha256, or the same descriptor)
    meta_set: tuple[str, ...]  # gallery meta keys set (absent before), e.g. ("tau",)


class Storage(ABC):
    """Persons, photos (descriptors), meta, keys, audit and the change feed of many galleries.

    See the module docstring for what a backend implements; :class:`SQLStorage` implements
    every method below in SQL.
    """

    # -- lifecycle ------------------------------------------------------------------------
    @abstractmethod
    def ping(self) -> None:
        """Raise DatabaseError if the database cannot be reached (readiness)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """A one-line name for logs and ``/info`` (never a password)."""

    # -- persons --------------------------------------------------------------------------
    @abstractmethod
    def create_person(self, gallery: str, name: str, *, actor: int | None = None) -> PersonRow:
        """A new person with no photo; Conflict if the name is taken in that gallery."""

    @abstractmethod
    def list_persons(
        self, gallery: str, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[PersonRow], int]:
        """A page of persons ordered by name, and the gallery's total."""

    @abstractmethod
    def get_person(self, gallery: str, person_id: int) -> PersonRow:
        """The person, or NotFoundError (also when it belongs to another gallery)."""

    @abstractmethod
    def find_person(self, gallery: str, name: str) -> PersonRow | None: ...

    @abstractmethod
    def rename_person(
        self, gallery: str, person_id: int, new_name: str, *, actor: int | None = None
    ) -> PersonRow: ...

    @abstractmethod
    def delete_person(self, gallery: str, person_id: int, *, actor: int | None = None) -> int:
        """Delete the person and every descriptor; returns how many descriptors went."""

    # -- photos ---------------------------------------------------------------------------
    @abstractmethod
    def add_photos(
        self,
        gallery: str,
        name: str,
        vectors: np.ndarray,
        *,
        model_id: str,
        sha256s: Sequence[str | None] | None = None,
        sources: Sequence[str | None] | None = None,
        actor: int | None = None,
        pipeline: str | None = None,
    ) -> tuple[PersonRow, list[int]]:
        """Enroll (n, d) descriptors for ``name`` (created if new) in one transaction.

        The gallery's encoder and ``pipeline`` are fixed at its first photo; another
        ``model_id``, ``d`` or pipeline raises DatabaseError. Returns the person afterwards and
        the new photo ids.
        """

    @abstractmethod
    def list_photos(self, gallery: str, person_id: int) -> list[PhotoRow]: ...

    @abstractmethod
    def delete_photo(
        self, gallery: str, person_id: int, photo_id: int, *, actor: int | None = None
    ) -> None: ...

    @abstractmethod
    def names_with_hash(self, gallery: str, sha256: str) -> list[str]:
        """Persons of the gallery who already have a photo with this file hash."""

    @abstractmethod
    def load_vectors(self, gallery: str, person_ids: Sequence[int] | None = None) -> GalleryVectors:
        """All descriptors of the gallery, or of the given persons only (for the index)."""

    @abstractmethod
    def import_persons(
        self,
        gallery: str,
        persons: Sequence[ImportPerson],
        *,
        model_id: str,
        meta_defaults: dict[str, str] | None = None,
        merge: bool = False,
        origin: str | None = None,
        actor: int | None = None,
        pipeline: str | None = None,
    ) -> ImportCounts:
        """Copy persons with their photos into ``gallery`` in one transaction.

        A photo already there (same sha256, or without one the same descriptor) is skipped, so
        importing twice changes nothing. A person who exists and would get new photos is a
        :class:`Conflict` (nothing is written) unless ``merge``. ``meta_defaults`` (e.g. a
        calibrated ``tau``) are set where the gallery has no value. ``origin`` labels the audit
        rows.
        """

    @abstractmethod
    def total_persons(self) -> int:
        """Persons in every gallery together (0: an empty service)."""

    # -- meta -----------------------------------------------------------------------------
    @abstractmethod
    def get_meta(self, gallery: str) -> dict[str, str]:
        """``model_id``, ``dim``, ``tau`` (those set) of a gallery."""

    @abstractmethod
    def set_tau(self, gallery: str, tau: float, *, actor: int | None = None) -> None: ...

    @abstractmethod
    def set_identification_tau(
        self,
        gallery: str,
        ident: IdentificationTau,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        actor: int | None = None,
    ) -> None:
        """Store a 1:N threshold (``cnnkit serve calibrate --for identification``); with
        ``model_id``, the gallery must be of that encoder (an empty one becomes so)."""

    @abstractmethod
    def counts(self, gallery: str) -> tuple[int, int]:
        """(persons, descriptors) in a gallery."""

    # -- keys -----------------------------------------------------------------------------
    @abstractmethod
    def create_key(self, role: str, gallery: str, label: str | None = None) -> tuple[KeyRow, str]:
        """A new key: its row and the secret, returned this once (only its hash is stored)."""

    @abstractmethod
    def key_for_secret(self, secret: str) -> KeyRow | None:
        """The live (not revoked) key with this secret, or None."""

    @abstractmethod
    def list_keys(self) -> list[KeyRow]: ...

    @abstractmethod
    def revoke_key(self, key_id: int) -> KeyRow:
        """Revoke a key (it stays listed, marked revoked); NotFoundError if unknown."""

    # -- audit and feed -------------------------------------------------------------------
    @abstractmethod
    def audit_log(self, gallery: str, *, limit: int = 100) -> list[AuditRow]:
        """The gallery's latest audit rows, newest first."""

    @abstractmethod
    def record(
        self, gallery: str, action: str, *, actor: int | None, person_id: int | None = None
    ) -> None:
        """An audit row for a read-only action worth recording (verify, identify)."""

    @abstractmethod
    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        """Feed rows with ``seq`` greater than ``seq``, in order."""

    @abstractmethod
    def last_seq(self) -> int:
        """The highest committed ``seq`` (0 for an empty feed)."""
