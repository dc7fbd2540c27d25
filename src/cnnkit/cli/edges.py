"""`cnnkit edges` commands (being built; see the issue for this capability)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's commands to the `cnnkit` parser."""
    return None
