"""Where cnnkit keeps files that last between runs (the user data folder, via platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path


def user_data_file(name: str, env: str) -> Path:
    """``$env`` if set, else ``name`` in the user data folder (e.g. ``~/.local/share/cnnkit``)."""
    override = os.environ.get(env)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("cnnkit")) / name
