"""What the face use cases need from a person database: one small interface, two backends.

The use-case functions (enroll, verify, identify) take a :class:`PersonStore`. Two classes
implement it:

- :class:`cnnkit.face.gallery.Gallery`: an SQLite file (WAL), the default, for one machine;
- the service's PostgreSQL store (``cnnkit.serve.storage``), shared by several replicas, each
  keeping its search index in memory and following the database's change feed.

Every method that changes the store is one transaction: it either happens whole or not at all.
Descriptors are (n, d) float32 arrays of the encoder named by ``model_id``; distances are
Euclidean, as dlib's threshold 0.6 assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Person:
    """One enrolled person: name, number of enrolled photos, when first enrolled."""

    name: str
    n_photos: int
    created_at: str


@dataclass(frozen=True)
class Match:
    """An enrolled person near a query descriptor."""

    name: str | None  # None when the store is empty
    distance: float  # Euclidean distance to that person's nearest enrolled descriptor


@runtime_checkable
class PersonStore(Protocol):
    """A person database: persons, their descriptors, search, and the tolerance to use."""

    def add(
        self,
        name: str,
        vectors: np.ndarray,
        *,
        model_id: str,
        sources: Sequence[str | None] | None = None,
        sha256s: Sequence[str | None] | None = None,
    ) -> int:
        """Enroll (n, d) descriptors for ``name`` (created if new); returns the person's count."""
        ...

    def remove(self, name: str) -> int:
        """Delete a person and every descriptor; returns how many descriptors went."""
        ...

    def rename(self, old: str, new: str) -> None:
        """Rename a person; the new name must be free."""
        ...

    def persons(self) -> list[Person]:
        """Every enrolled person, by name."""
        ...

    def vectors_of(self, name: str) -> np.ndarray:
        """The (n, d) descriptors enrolled for ``name``."""
        ...

    def names_with_hash(self, sha256: str) -> list[str]:
        """The persons who already have a photo with this file hash (to warn on re-use)."""
        ...

    def search(self, queries: np.ndarray) -> list[Match]:
        """The nearest person for each query descriptor (M, d)."""
        ...

    def nearest(self, queries: np.ndarray, k: int = 3) -> list[list[Match]]:
        """Up to ``k`` nearest distinct persons for each query (M, d), closest first."""
        ...

    def distance_to(self, query: np.ndarray, name: str) -> float:
        """Smallest distance from a (d,) descriptor to ``name``'s descriptors."""
        ...

    def tolerance(self, tolerance: float | None = None) -> float:
        """``tolerance`` if given, else the store's calibrated tau, else 0.6."""
        ...

    def check_model(self, model_id: str, dim: int | None = None) -> None:
        """Raise DatabaseError if the store holds descriptors of another encoder."""
        ...
