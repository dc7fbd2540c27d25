"""Using a trained checkpoint: top-k prediction for image files, accuracy and confusion matrix.

The checkpoint says how its images were prepared (size, channels, mean/std), so prediction
applies exactly the training preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import PATH_LIMIT, CnnkitError, WeightsError, shorten
from cnnkit.train.build import create, transfer_state
from cnnkit.train.checkpoint import load_checkpoint
from cnnkit.train.data import ImageTransform, load_data


@dataclass
class LoadedModel:
    """A model in eval mode with what is needed to feed it."""

    model: Any
    name: str
    classes: list[str]
    transform: ImageTransform
    dataset: str  # "digits" when trained on the built-in digits, else ""
    source: str = ""  # the checkpoint file, for error messages


def load_trained(weights: str | Path, model_name: str | None = None) -> LoadedModel:
    """Rebuild the model saved in ``weights`` (a ``cnnkit train`` checkpoint) in eval mode.

    Raises:
        WeightsError: unreadable checkpoint, or ``model_name`` differs from the checkpoint's model.
    """
    ckpt = load_checkpoint(weights)
    name = str(ckpt["model"])
    if model_name is not None and model_name != name:
        raise WeightsError(
            f"checkpoint holds a {name!r}, not a {shorten(model_name, PATH_LIMIT)}",
            path=weights,
            hint=f"use --model {name}",
        )
    classes = [str(c) for c in ckpt["classes"]]
    model = create(name, len(classes), **dict(ckpt.get("model_kwargs", {})))
    transfer_state(ckpt["state_dict"], model, source=str(weights))
    model.eval()
    transform = ImageTransform(
        int(ckpt["image_size"]),
        int(ckpt["in_channels"]),
        tuple(float(v) for v in ckpt["mean"]),
        tuple(float(v) for v in ckpt["std"]),
    )
    return LoadedModel(
        model, name, classes, transform, str(ckpt.get("dataset", "")), source=str(weights)
    )


def predict_arrays(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, n_classes) for inputs x (N, n_C, n_H, n_W)."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device)
            out.append(torch.softmax(model(xb), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def predict_files(
    loaded: LoadedModel, paths: list[Path], top_k: int = 5
) -> list[tuple[Path, int, str, float]]:
    """Rows (file, rank, class, probability) for the ``top_k`` classes of each image, rank 1 first.

    Raises:
        ImageReadError: an image that cannot be read (the whole call stops; nothing is guessed).
    """
    if top_k < 1:
        raise CnnkitError(f"--top-k must be at least 1, got {top_k}")
    k = min(top_k, len(loaded.classes))
    rows: list[tuple[Path, int, str, float]] = []
    for path in paths:
        x = loaded.transform.load(path)[None]  # (1, n_C, n_H, n_W)
        probs = predict_arrays(loaded.model, x)[0]
        order = np.argsort(-probs, kind="stable")[:k]
        rows.extend((path, r + 1, loaded.classes[c], float(probs[c])) for r, c in enumerate(order))
    return rows


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """C[i, j] = number of images of true class i predicted as class j; (n_classes, n_classes)."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


@dataclass
class Evaluation:
    accuracy: float
    confusion: np.ndarray  # (n_classes, n_classes), rows = true class
    classes: list[str]
    n: int


def evaluate_model(
    loaded: LoadedModel, *, data: str | Path | None = None, dataset: str | None = None
) -> Evaluation:
    """Accuracy and confusion matrix on ``--data DIR`` (every readable image; its subfolders must
    be the checkpoint's classes) or on ``--dataset digits`` (the fixed test split)."""
    t = loaded.transform
    bundle = load_data(
        data=data, dataset=dataset, image_size=t.size, channels=t.channels, val_split=0.0, seed=0
    )
    if dataset is not None:
        eval_set: Any = bundle.val
        if list(bundle.classes) != list(loaded.classes):  # labels index the model's classes
            raise CnnkitError(
                f"the checkpoint's {len(loaded.classes)} classes "
                f"({_names(loaded.classes)}) are not the {dataset} data set's "
                f"{len(bundle.classes)} ({_names(bundle.classes)})",
                path=loaded.source or None,
                hint=f"evaluate it with --data DIR (one subfolder per class), or train a "
                f"model on --dataset {dataset}",
            )
    else:
        eval_set = bundle.train
        missing = sorted(set(bundle.classes) - set(loaded.classes))
        if missing:
            raise CnnkitError(
                f"classes not known to the model: {', '.join(missing)}",
                path=data,
                hint=f"the model knows {', '.join(loaded.classes)}",
            )
    x, y = eval_set.arrays()
    if dataset is None:  # map folder class indices to the model's class indices
        remap = np.array([loaded.classes.index(c) for c in bundle.classes])
        y = remap[y]
    probs = predict_arrays(loaded.model, x)
    pred = probs.argmax(1)
    cm = confusion_matrix(y, pred, len(loaded.classes))
    return Evaluation(float((pred == y).mean()), cm, list(loaded.classes), len(y))


def _names(classes: list[str], n: int = 4) -> str:
    """The first ``n`` class names, shortened, for an error line."""
    shown = ", ".join(shorten(c, 20) for c in classes[:n])
    return shown + (f", ... ({len(classes) - n} more)" if len(classes) > n else "")


def format_confusion(cm: np.ndarray, classes: list[str]) -> str:
    """A text table: rows are true classes, columns predicted classes."""
    width = max(5, *(len(c) for c in classes), len(str(int(cm.max(initial=0)))))
    head = "true\\pred".ljust(width + 1) + " ".join(c.rjust(width) for c in classes)
    lines = [head]
    for c, row in zip(classes, cm, strict=True):
        lines.append(c.ljust(width + 1) + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def plot_confusion(cm: np.ndarray, classes: list[str], path: str | Path, title: str = "") -> Path:
    """Write the confusion matrix as a PNG (counts in each cell), atomically."""
    from cnnkit.io.figures import save_figure, subplots

    n = len(classes)
    fig, ax = subplots(figsize=(1.2 + 0.5 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), classes, rotation=90 if n > 12 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    top = cm.max(initial=0)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                color = "white" if cm[i, j] > top / 2 else "black"
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8, color=color)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_history(history: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch (train and validation) as a PNG, atomically."""
    from cnnkit.io.figures import save_figure, subplots

    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = subplots(1, 2, figsize=(9, 3.4), dpi=100)
    a1.plot(epochs, [h["loss"] for h in history], "o-", label="train")
    if all("val_loss" in h for h in history):
        a1.plot(epochs, [h["val_loss"] for h in history], "s-", label="test")
    a1.set_xlabel("epoch")
    a1.set_ylabel("cross-entropy loss")
    a1.set_yscale("log")
    a1.legend()
    a2.plot(epochs, [100 * h["acc"] for h in history], "o-", label="train")
    if all("val_acc" in h for h in history):
        a2.plot(epochs, [100 * h["val_acc"] for h in history], "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy (%)")
    a2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
