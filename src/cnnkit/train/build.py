"""Models for training: build one from the registry, find its input channels and its head,
and move weights from a checkpoint into it (replacing the head when the class count differs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cnnkit.errors import WeightsError

log = logging.getLogger(__name__)


def create(name: str, num_classes: int, **kwargs: Any) -> Any:
    """``cnnkit.models.create_model(name, num_classes=num_classes, **kwargs)`` (no weights)."""
    from cnnkit.models import create_model

    return create_model(name, num_classes=num_classes, **kwargs)


def input_channels(model: Any) -> int:
    """n_C of the input: the ``in_channels`` of the first convolution (3 when there is none)."""
    import torch.nn as nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return 3


def registry_channels(name: str) -> int | None:
    """n_C of the input the registry records for ``name`` (None when it records none)."""
    try:
        from cnnkit.models import model_info

        return int(model_info(name).input_size[0])
    except (ImportError, AttributeError, IndexError):
        return None


def default_image_size(name: str) -> int:
    """n_H of the input the architecture was designed for (the registry's ``input_size``);
    32 for LeNet-5 and the CIFAR-style ResNets, 224 for the ImageNet networks."""
    try:
        from cnnkit.models import model_info

        return int(model_info(name).input_size[-1])
    except (ImportError, AttributeError):
        pass
    lowered = name.lower()
    if lowered.startswith("lenet") or "cifar" in lowered:
        return 32
    if lowered.startswith("resnet") and lowered[6:].isdigit() and int(lowered[6:]) % 6 == 2:
        return 32  # resnet8/20/32/56/110: the CIFAR family (depth = 6n + 2)
    return 224


def head_keys(model: Any) -> list[str]:
    """State-dict keys of the classifier head: those under the model's ``head_prefixes``
    (e.g. LeNet-5's RBF ``output.``), else the last ``nn.Linear`` (weight and bias)."""
    import torch.nn as nn

    prefixes = tuple(getattr(model, "head_prefixes", ()) or ())
    if prefixes:
        return [k for k in model.state_dict() if k.startswith(prefixes)]

    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    if last is None:
        return []
    prefix = f"{last}." if last else ""
    return [
        k for k in model.state_dict() if k.startswith(prefix) and k.count(".") == prefix.count(".")
    ]


def transfer_state(state: dict[str, Any], model: Any, *, source: str = "") -> list[str]:
    """Copy ``state`` into ``model``; the head may differ in shape and is then left as initialised.

    Returns the keys that were replaced (empty when the class counts agree).

    Raises:
        WeightsError: missing/unexpected keys, or a shape mismatch outside the head; the message
            lists the first few.
    """
    target = model.state_dict()
    # A checkpoint saved from a DDP-wrapped model has "module." in front of every key.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    heads = set(head_keys(model))
    mismatched = [
        k for k in target if k in state and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    bad_shapes = [k for k in mismatched if k not in heads]
    problems = [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected]
    problems += [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in bad_shapes
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; ... {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise WeightsError(
            f"checkpoint does not fit the model: {shown}",
            path=source or None,
            hint="use the same MODEL (and options) the checkpoint was trained with",
        )
    merged = {k: (target[k] if k in mismatched else state[k]) for k in target}
    model.load_state_dict(merged)
    if mismatched:
        log.info(
            "new classifier head (%s): class count differs from the checkpoint",
            ", ".join(mismatched),
        )
    return mismatched


def load_start_weights(
    model: Any, name: str, source: str | Path, model_kwargs: dict[str, Any]
) -> list[str]:
    """Initialise ``model`` from ``--weights SOURCE``; returns the head keys replaced.

    ``source`` is a cnnkit training checkpoint, or anything :func:`cnnkit.models.load_weights`
    accepts (a published checkpoint file or name); for the latter the weights are first loaded into
    a model with the checkpoint's own class count (the default), then moved over.
    """
    from cnnkit.train.checkpoint import try_load_training_checkpoint

    ckpt = try_load_training_checkpoint(source)
    if ckpt is not None:
        return transfer_state(ckpt["state_dict"], model, source=str(source))
    from cnnkit.models import create_model, load_weights

    donor = create_model(name, **model_kwargs)
    load_weights(donor, source)
    return transfer_state(donor.state_dict(), model, source=str(source))
