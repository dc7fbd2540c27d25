"""The person database's descriptions of itself: descriptor pipeline, identification tau, info.

Meta keys (besides ``model_id``, ``dim``, ``tau`` of :mod:`cnnkit.face.gallery`):

- ``pipeline``: how the descriptors were made (:mod:`cnnkit.face.descriptors`); absent in a
  database from before it was recorded, which then holds ``dlib`` descriptors;
- ``tau_identification``, ``tau_identification_fpir``, ``tau_identification_gallery``,
  ``tau_identification_norm``: the 1:N threshold chosen by ``cnnkit face calibrate --for
  identification`` at that FPIR, the gallery size it was chosen for (a larger gallery needs a
  stricter tau), and the score it applies to (``none``: the distance; ``tnorm`` or ``snorm``:
  see :mod:`cnnkit.face.openset`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import CnnkitError, DatabaseError
from cnnkit.face.descriptors import LEGACY_PIPELINE, get_pipeline

if TYPE_CHECKING:
    from contextlib import AbstractContextManager


@dataclass(frozen=True)
class IdentificationTau:
    """A 1:N threshold and what it was calibrated for."""

    tau: float
    fpir: float
    gallery_size: int  # persons in the gallery it was chosen on
    norm: str = "none"  # the score it applies to (cnnkit.face.openset): distance, T-norm, S-norm


@dataclass(frozen=True)
class GalleryInfo:
    """What ``cnnkit face info`` shows."""

    path: str
    model_id: str | None
    dim: int | None
    pipeline: str | None  # None: empty, nothing recorded yet
    pipeline_recorded: bool  # False: a database from before the key (dlib descriptors)
    tau: float | None  # the pair (verification) tau
    identification: IdentificationTau | None
    persons: int
    descriptors: int


class GalleryMeta:
    """Mixin of :class:`cnnkit.face.gallery.Gallery` (uses its connection and transactions)."""

    path: Path
    _con: sqlite3.Connection

    if TYPE_CHECKING:  # provided by Gallery

        def _meta(self, key: str, con: sqlite3.Connection | None = None) -> str | None: ...

        def _translate(self) -> AbstractContextManager[None]: ...

        def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _check_model(self, con: sqlite3.Connection, model_id: str, dim: int | None) -> None: ...

        def _claim(self, con: sqlite3.Connection, model_id: str, dim: int | None) -> None: ...

    # -- pipeline --------------------------------------------------------------------------
    def _pipeline(self, con: sqlite3.Connection) -> str | None:
        stored = self._meta("pipeline", con)
        if stored is not None:
            return stored
        has = con.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone()
        return LEGACY_PIPELINE if has else None

    @property
    def pipeline(self) -> str | None:
        """How the stored descriptors were made (None: an empty database, nothing recorded)."""
        with self._translate():
            return self._pipeline(self._con)

    def _claim_pipeline(self, con: sqlite3.Connection, pipeline: str) -> None:
        """Check ``pipeline`` against the stored one, record it in a new database (in a
        transaction)."""
        get_pipeline(pipeline)
        stored = self._pipeline(con)
        if stored is None:
            con.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('pipeline', ?)", (pipeline,)
            )
        elif stored != pipeline:
            raise DatabaseError(
                f"holds descriptors made with pipeline {stored!r}, not {pipeline!r}",
                path=self.path,
                hint=f"use --pipeline {stored} (the database's), or re-enroll everyone in a "
                f"new --db for {pipeline!r}",
            )

    # -- identification tau ------------------------------------------------------------------
    @property
    def identification_tau(self) -> IdentificationTau | None:
        """The calibrated 1:N threshold, or None."""
        with self._translate():
            tau = self._meta("tau_identification")
            fpir = self._meta("tau_identification_fpir")
            size = self._meta("tau_identification_gallery")
            norm = self._meta("tau_identification_norm")
        if tau is None:
            return None
        return IdentificationTau(float(tau), float(fpir or "nan"), int(size or 0), norm or "none")

    def set_identification_tau(
        self,
        tau: float,
        fpir: float,
        gallery_size: int,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        pipeline: str | None = None,
        norm: str = "none",
    ) -> None:
        """Store a 1:N threshold on scores normalised by ``norm``, chosen at ``fpir`` on a gallery
        of ``gallery_size`` persons, for the descriptors of ``model_id`` made with ``pipeline``."""
        self._set_meta(
            {
                "tau_identification": repr(float(tau)),
                "tau_identification_fpir": repr(float(fpir)),
                "tau_identification_gallery": str(int(gallery_size)),
                "tau_identification_norm": norm,
            },
            tau=tau,
            model_id=model_id,
            dim=dim,
            pipeline=pipeline,
        )

    def _set_meta(
        self,
        values: dict[str, str],
        *,
        tau: float,
        model_id: str | None,
        dim: int | None,
        pipeline: str | None = None,
    ) -> None:
        """Store a calibration's meta keys in one transaction: ``tau`` must be a positive
        number; with ``model_id`` (and ``pipeline``) the database must be of that encoder (and
        pipeline), and an empty one becomes so."""
        if not np.isfinite(tau) or tau <= 0:
            raise CnnkitError(f"tau must be a positive number, got {tau}")
        with self.transaction() as con:
            if model_id is not None:
                self._check_model(con, model_id, dim)
                self._claim(con, model_id, dim)
            if pipeline is not None:
                self._claim_pipeline(con, pipeline)
            for key, value in values.items():
                con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- info --------------------------------------------------------------------------------
    def info(self) -> GalleryInfo:
        """Encoder, pipeline, both taus, and counts."""
        with self._translate():
            con = self._con
            n_persons = int(con.execute("SELECT COUNT(*) FROM persons").fetchone()[0])
            n_desc = int(con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            pipeline = self._pipeline(con)
            recorded = self._meta("pipeline", con) is not None
            dim = self._meta("dim", con)
            tau = self._meta("tau", con)
            model_id = self._meta("model_id", con)
        return GalleryInfo(
            str(self.path),
            model_id,
            None if dim is None else int(dim),
            pipeline,
            recorded,
            None if tau is None else float(tau),
            self.identification_tau,
            n_persons,
            n_desc,
        )


def info_json(info: GalleryInfo) -> dict[str, Any]:
    """:class:`GalleryInfo` as a JSON-able dict (``cnnkit face info --json``)."""
    ident = info.identification
    return {
        "db": info.path,
        "model_id": info.model_id,
        "dim": info.dim,
        "pipeline": info.pipeline,
        "pipeline_recorded": info.pipeline_recorded,
        "tau_verification": info.tau,
        "tau_identification": None if ident is None else ident.tau,
        "tau_identification_fpir": None if ident is None else ident.fpir,
        "tau_identification_gallery_size": None if ident is None else ident.gallery_size,
        "tau_identification_norm": None if ident is None else ident.norm,
        "persons": info.persons,
        "descriptors": info.descriptors,
    }
