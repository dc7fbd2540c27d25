"""Matplotlib figures out: headless (Agg) subplots, and PNG files written atomically.

Every plot cnnkit writes (confusion matrices, training curves, ROC curves, style-transfer losses,
the demo's charts) goes through these two functions, so none needs a display and none leaves a
half-written PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from cnnkit.io.atomic import atomic_write_bytes


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the headless Agg backend: returns ``(fig, axes)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Render ``fig`` as a PNG, write it to ``path`` atomically, close the figure; return the path.

    Raises :class:`~cnnkit.errors.OutputError` when ``path`` cannot be written.
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
