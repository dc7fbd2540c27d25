"""``cnnkit serve import``: the persons of a ``cnnkit face`` database, into the service's store.

The command line (``cnnkit face enroll``, :class:`cnnkit.face.gallery.Gallery`, default
``faces.sqlite3``) and the service (``serve.sqlite3`` or PostgreSQL, with galleries, keys, audit
and a change feed) keep two different databases. :func:`import_face_db` copies every person of
the first, with their descriptors, photo sha256s and source names, into one gallery of the
second, in one transaction; a running server picks them up through the change feed.

Descriptors are only comparable when made by the same encoder and the same pipeline
(:mod:`cnnkit.face.descriptors`), so the face database's ``model_id`` must be the gallery's (or,
for an empty gallery, the service's encoder's) and its ``pipeline`` the gallery's (an empty
gallery takes the face database's, and the service then makes that gallery's descriptors the
same way), else a one-line error says what differs. The calibrated taus come along when the
gallery has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import CnnkitError, DatabaseError
from cnnkit.face.gallery import Gallery, default_db_path
from cnnkit.serve.storage import ImportCounts, ImportPerson, Storage, is_postgres_url
from cnnkit.serve.storage.base import gallery_pipeline, identification_meta


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_face_db` did."""

    source: str  # the face database file
    target: str  # the service's storage (``Storage.describe()``, no password)
    gallery: str
    persons: int  # persons in the source
    counts: ImportCounts
    tau: float | None  # the pair tau the gallery got from the source (None: none copied)

    def summary(self) -> str:
        """One line for the command line."""
        c = self.counts
        line = (
            f"imported {self.persons} persons from {self.source} into gallery {self.gallery!r} "
            f"of {self.target}: {c.persons_created} new, {c.persons_merged} merged, "
            f"{c.persons_unchanged} already there; {c.photos_added} photos added, "
            f"{c.photos_skipped} already there"
        )
        if self.tau is not None:
            line += f"; tau {self.tau:.4f}"
        if "tau_identification" in c.meta_set:
            line += " (and the identification tau)"
        return line


def service_model_id() -> str:
    """The ``model_id`` of the encoder ``cnnkit serve`` loads (dlib's), without loading it."""
    from cnnkit.face.encoder import dlib_model_id

    return dlib_model_id()


def import_face_db(
    storage: Storage,
    faces_db: str | Path | None = None,
    *,
    gallery: str = "default",
    merge: bool = False,
    model_id: str | None = None,
) -> ImportReport:
    """Copy every person of a ``cnnkit face`` database into ``gallery`` of ``storage``.

    Args:
        storage: the service's store (``cnnkit.serve.storage.open_storage``).
        faces_db: the face database (None: the CLI's default, ``$CNNKIT_FACE_DB`` or
            ``faces.sqlite3`` in the user data folder); opened read-only.
        gallery: the target gallery.
        merge: add photos to persons the gallery already has (else those are refused).
        model_id: the service encoder's id (None: :func:`service_model_id`), required of the
            source when the gallery holds no descriptors yet.

    Raises DatabaseError when the encoder or pipeline differ, Conflict when persons already
    exist and would get new photos without ``merge``; nothing is written then.
    """
    path = Path(faces_db) if faces_db is not None else default_db_path()
    with Gallery(path, create=False, readonly=True) as db:
        info = db.info()
        if info.descriptors == 0 or info.model_id is None:
            raise DatabaseError(
                "holds no enrolled person: nothing to import",
                path=path,
                hint="enroll first: cnnkit face enroll NAME PHOTO --db " + str(path),
            )
        _check_compatible(path, info.model_id, info.pipeline, storage, gallery, model_id)
        persons = []
        for person in db.persons():
            labels = db.sources_of(person.name)
            persons.append(
                ImportPerson(
                    person.name,
                    db.vectors_of(person.name),
                    [sha for _, sha in labels],
                    [source for source, _ in labels],
                )
            )
        defaults = {} if info.tau is None else {"tau": repr(float(info.tau))}
        if info.identification is not None:  # the same text as the face database holds
            defaults.update(identification_meta(info.identification))
    counts = storage.import_persons(
        gallery,
        persons,
        model_id=info.model_id,
        meta_defaults=defaults,
        merge=merge,
        origin=path.name,
        pipeline=info.pipeline,
    )
    tau = info.tau if "tau" in counts.meta_set else None
    return ImportReport(str(path), storage.describe(), gallery, len(persons), counts, tau)


def _check_compatible(
    path: Path,
    source_model: str,
    source_pipeline: str | None,
    storage: Storage,
    gallery: str,
    model_id: str | None,
) -> None:
    """One-line DatabaseError naming what differs between the face database and the service."""
    meta = storage.get_meta(gallery)
    recorded = gallery_pipeline(meta)
    if recorded is not None and source_pipeline != recorded:
        raise DatabaseError(
            f"holds descriptors made with pipeline {source_pipeline!r}, but gallery {gallery!r} "
            f"holds {recorded!r} ones",
            path=path,
            hint="import into another --gallery, or enroll the photos again with --pipeline "
            f"{recorded} into a new --db and import that",
        )
    stored = meta.get("model_id")
    expected = stored or model_id or service_model_id()
    if source_model != expected:
        where = (
            f"gallery {gallery!r} holds descriptors of encoder"
            if stored
            else "cnnkit serve encodes with"
        )
        hint = (
            "import into another --gallery, or enroll the photos again with that encoder"
            if stored
            else "enroll the photos again without --model into a new --db, then import that"
        )
        raise DatabaseError(
            f"made with encoder {source_model!r}, but {where} {expected!r}", path=path, hint=hint
        )


def import_notice(storage: Storage, db: str | None = None) -> str | None:
    """One line for ``cnnkit serve``'s start-up: when the service holds nobody and the CLI's
    default face database holds persons, how to import them; else None. ``db``: the
    ``--db`` the server was given (repeated in the command, without a password)."""
    if storage.total_persons() > 0:
        return None
    path = default_db_path()
    if not path.is_file():
        return None
    try:
        with Gallery(path, create=False, readonly=True) as faces:
            count = faces.info().persons
    except CnnkitError:
        return None  # not readable, or not a face database: nothing to suggest
    if count == 0:
        return None
    command = "cnnkit serve import"
    if db is not None:
        command += f" --db {storage.describe() if is_postgres_url(db) else db}"
    return (
        f"cnnkit serve: the service's database is empty, but {path} holds {count} "
        f"person{'' if count == 1 else 's'} "
        f"enrolled with `cnnkit face`; to serve them, run: {command}"
    )
