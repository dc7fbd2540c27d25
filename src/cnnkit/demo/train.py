"""Demo section: train (being built)."""

from __future__ import annotations

from pathlib import Path

TITLE = "train"


def build(out_dir: Path) -> str:
    """Write this section's PNGs into ``out_dir`` and return its HTML fragment."""
    return "<p>Not built yet.</p>"
