"""Training checkpoints: one ``.pt`` file, written atomically, loadable with ``weights_only=True``.

A checkpoint is a plain dict (tensors, numbers, strings, lists) so ``torch.load(weights_only=True)``
reads it safely::

    {"format": "cnnkit-train/1", "model": "lenet5", "model_kwargs": {...}, "classes": [...],
     "state_dict": {...}, "optimizer": "adam", "optimizer_state": {...}, "epoch": 3,
     "history": [{"epoch": 1, "loss": ..., "acc": ..., "val_loss": ..., "val_acc": ...}, ...],
     "image_size": 32, "in_channels": 1, "mean": [...], "std": [...], "engine": "torch",
     "config": {...}, "interrupted": False}

``epoch`` counts the epochs fully completed; ``--resume`` continues with the next one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnkit.errors import WeightsError
from cnnkit.io import atomic_write

FORMAT = "cnnkit-train/1"


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` into a temporary file beside ``path``, then ``os.replace`` it into place.

    A crash or Ctrl-C during the write leaves the previous checkpoint intact.
    """
    import torch

    path = Path(path)
    checkpoint = {"format": FORMAT, **checkpoint}
    with atomic_write(path, "wb") as f:
        torch.save(checkpoint, f)
    return path


def is_training_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        WeightsError: missing file, unreadable file, or not a cnnkit training checkpoint.
    """
    import torch

    from cnnkit.models.weights import describe_load_failure

    path = Path(path)
    if not path.is_file():
        raise WeightsError("no such checkpoint", path=path, hint="train one with `cnnkit train`")
    hint = "give a file written by `cnnkit train --out`"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or pickled with unsafe objects
        # PyTorch's text is not echoed: it is cut off mid-sentence and suggests
        # weights_only=False, which would run whatever code the file holds.
        what, _ = describe_load_failure(path, exc)
        raise WeightsError(f"not a cnnkit checkpoint: {what}", path=path, hint=hint) from exc
    if not is_training_checkpoint(obj):
        raise WeightsError(
            "not a cnnkit checkpoint: a PyTorch file without cnnkit's training record",
            path=path,
            hint=hint,
        )
    return obj


def try_load_training_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint dict if ``path`` is a cnnkit training checkpoint, else None (no error)."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return obj if is_training_checkpoint(obj) else None
