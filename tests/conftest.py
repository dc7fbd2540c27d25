"""Shared test setup: offline, seeded, quiet, and small thread counts on 2-core machines."""

from __future__ import annotations

import os

os.environ.setdefault("CNNKIT_QUIET", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded NumPy generator, so failures reproduce."""
    return np.random.default_rng(0)
