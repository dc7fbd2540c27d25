"""What a training run is told: :class:`TrainConfig`, and the tuned defaults per data source."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cnnkit.errors import PATH_LIMIT, CnnkitError, shorten

OPTIMIZERS = ("sgd", "adam", "adamw")
ENGINES = ("torch", "numpy")
#: Models the NumPy engine can train (it translates their layers to cnnkit.conv's).
NUMPY_MODELS = ("lenet5", "lenet5_modern")
SCHEDULES = ("cosine", "constant")

#: The digits recipe (LeNet-5, 1x32x32): reaches >= 98% test accuracy on the fixed split with both
#: engines. Used for any option left unset with ``--dataset digits``.
DIGITS_DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 32,
    "lr": 2e-3,
    "optimizer": "adam",
    "augment": 2,
}

#: Defaults for an image folder.
FOLDER_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "optimizer": "adam",
    "augment": 0,
}

#: Weight decay when ``--weight-decay`` is not given.
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adam": 0.0, "adamw": 1e-2}


@dataclass
class TrainConfig:
    """One training run. ``None`` means "the default for this data source" (see ``resolved``)."""

    model: str = "lenet5"  # registry name, e.g. lenet5, resnet18, resnet20
    data: str | None = None  # image folder, one subfolder per class
    dataset: str | None = None  # built-in dataset: "digits"
    epochs: int | None = None  # total epochs (a resumed run continues up to this)
    batch_size: int | None = None  # per process under torchrun
    lr: float | None = None  # peak learning rate
    optimizer: str | None = None  # sgd (momentum 0.9) | adam | adamw
    weight_decay: float | None = None  # L2 / decoupled decay; default per optimizer
    augment: int | None = None  # random shifts of up to this many pixels while training
    schedule: str = "cosine"  # learning rate over epochs: cosine to 0, or constant
    image_size: int | None = None  # n_H = n_W of the input; default from the model
    val_split: float = 0.2  # held-out fraction of an image folder (stratified, seeded)
    weights: str | None = None  # start from this checkpoint (head replaced if classes differ)
    out: str | None = "checkpoint.pt"  # written atomically after every epoch
    resume: bool = False  # continue the run saved in ``out``
    seed: int = 0  # model init, shuffling, validation split
    engine: str = "torch"  # torch | numpy (numpy: LeNet-5 with cnnkit.conv layers)
    device: str = "auto"  # cpu | cuda | auto
    workers: int = 0  # DataLoader worker processes for image folders
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # extra create_model keywords

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` filled from the digits or folder defaults, and checked."""
        defaults = DIGITS_DEFAULTS if self.dataset == "digits" else FOLDER_DEFAULTS
        values = asdict(self)
        for key, value in defaults.items():
            if values[key] is None:
                values[key] = value
        cfg = TrainConfig(**values)
        if cfg.weight_decay is None:
            cfg.weight_decay = DEFAULT_WEIGHT_DECAY.get(cfg.optimizer or "", 0.0)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise CnnkitError(
                f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {shorten(self.optimizer)}"
            )
        if self.engine not in ENGINES:
            raise CnnkitError(f"--engine must be torch or numpy; got {shorten(self.engine)}")
        if self.engine == "numpy" and self.model not in NUMPY_MODELS:
            raise CnnkitError(
                f"--engine numpy trains {' or '.join(NUMPY_MODELS)}, "
                f"not {shorten(self.model, PATH_LIMIT)}",
                hint="use --engine torch for other models",
            )
        if self.engine == "numpy" and self.optimizer == "adamw":
            raise CnnkitError("--engine numpy has sgd and adam, not adamw", hint="use adam")
        if self.schedule not in SCHEDULES:
            raise CnnkitError(
                f"--schedule must be cosine or constant; got {shorten(self.schedule)}"
            )
        if self.epochs is not None and self.epochs < 1:
            raise CnnkitError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise CnnkitError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise CnnkitError(f"--lr must be positive, got {self.lr}")
        if self.image_size is not None and self.image_size < 8:
            raise CnnkitError(f"--image-size must be at least 8, got {self.image_size}")
        if self.resume and not self.out:
            raise CnnkitError("--resume needs --out CKPT (the checkpoint to continue)")


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate for 0-based ``epoch``: cosine from ``lr`` down to ``lr/100``, or constant.

    lr_e = lr_min + (lr - lr_min) * (1 + cos(pi * e / E)) / 2, with E = epochs.
    """
    assert cfg.lr is not None and cfg.epochs is not None
    if cfg.schedule == "constant" or cfg.epochs <= 1:
        return cfg.lr
    lr_min = cfg.lr / 100.0
    return lr_min + (cfg.lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
