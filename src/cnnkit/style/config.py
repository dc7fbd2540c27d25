"""The options of the optimisation method (:class:`StyleConfig`), their checks, the loss history.

:func:`check_config` raises :class:`~cnnkit.errors.CnnkitError` subclasses with one-line messages,
so the CLI and the server print them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit.errors import CnnkitError, ShapeError
from cnnkit.style.backbone import RANDOM_SEED

DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
INITS = ("noise", "content", "content+noise")
OPTIMIZERS = ("lbfgs", "adam")

ImageInput = str | Path | Image.Image | np.ndarray


class DivergedError(CnnkitError):
    """The loss became NaN or infinite."""


@dataclass
class StyleConfig:
    """Every option of :func:`transfer` (the CLI flags have the same names)."""

    size: int = 512  # longest side of the output, px
    style_scale: float = 1.0  # style images' longest side = style_scale * size
    iterations: int = 300  # function evaluations per scale
    optimizer: str = "lbfgs"  # "lbfgs" or "adam"
    lr: float | None = None  # step size; default 1.0 (L-BFGS) or 0.02 (Adam)
    alpha: float = 1.0  # content weight
    beta: float = 10.0  # style weight (losses normalised: see ``normalize``)
    content_layer: str = "conv4_2"
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS
    style_layer_weights: Sequence[float] | None = None  # lambda[l]; default 1/L each
    style_blend_weights: Sequence[float] | None = None  # one per style image; default equal
    tv_weight: float = 0.0  # weight of the total-variation smoothness term
    init: str = "content"  # "noise", "content" or "content+noise"
    noise_ratio: float = 0.6  # share of noise in "content+noise" (the notes use 0.6)
    preserve_colors: bool = False  # transfer luminance only; keep the content's colours
    multiscale: bool = False  # coarse to fine: size/2 first, then size
    seed: int = 0  # seeds the noise init; same seed, same output
    save_every: int = 0  # call on_snapshot every N iterations (0: never)
    backbone: str = "auto"  # "auto", "vgg19" or "random-vgg19"
    weights: str | Path | None = None  # VGG-19 checkpoint file
    download: bool = False  # allow downloading the ImageNet weights
    normalize: bool = True  # divide each layer's cost by its value for G = 0 (see docs)
    pooling: str | None = None  # "max" or "avg"; default: max for ImageNet, avg for random
    random_seed: int = RANDOM_SEED  # seed of the random backbone's weights
    normalize_on: str = "content+style"  # random backbone: unit variance on these images
    per_channel: bool = True  # random backbone: unit variance per channel (else per layer)
    device: str = "cpu"  # "cpu", "cuda", ... or "auto"
    precision: str = "auto"  # "auto" (bf16 where the CPU has it), "fp32" or "bf16"
    channels_last: bool = False  # channels-last convolutions inside the forward
    line_search: bool = True  # L-BFGS with a strong-Wolfe line search (else fixed steps)
    lbfgs_rescale: bool = True  # L-BFGS on G / (0.02 numel): a first step of useful size

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1.0 if self.optimizer == "lbfgs" else 0.02


@dataclass
class History:
    """Losses per iteration, as they enter the total: alpha J_content, beta J_style, tv, J."""

    iteration: list[int] = field(default_factory=list)
    content: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    backbone: str = ""

    def append(self, it: int, content: float, style: float, tv: float, total: float) -> None:
        self.iteration.append(it)
        self.content.append(content)
        self.style.append(style)
        self.tv.append(tv)
        self.total.append(total)

    def plot(self, path: str | Path) -> Path:
        """Write the loss curves (log scale) as a PNG, atomically."""
        from cnnkit.io.figures import save_figure, subplots

        fig, ax = subplots(figsize=(5, 3.2), dpi=100)
        x = list(range(1, len(self.total) + 1))
        ax.plot(x, self.total, label="total J", color="k")
        ax.plot(x, self.content, label="alpha J_content")
        ax.plot(x, self.style, label="beta J_style")
        if any(self.tv):
            ax.plot(x, self.tv, label="tv")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.set_title(f"style transfer ({self.backbone})" if self.backbone else "style transfer")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_figure(fig, path)


def check_config(config: StyleConfig, n_styles: int) -> None:
    if config.optimizer not in OPTIMIZERS:
        raise CnnkitError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    if config.init not in INITS:
        raise CnnkitError(f"init must be one of {INITS}, got {config.init!r}")
    if config.normalize_on not in ("content", "content+style"):
        raise CnnkitError(
            f"normalize_on must be content or content+style, got {config.normalize_on!r}"
        )
    if config.precision not in ("auto", "fp32", "bf16"):
        raise CnnkitError(f"precision must be auto, fp32 or bf16, got {config.precision!r}")
    if config.size < 16:
        raise CnnkitError(f"size must be at least 16 px, got {config.size}")
    if config.iterations < 0:
        raise CnnkitError(f"iterations must be >= 0, got {config.iterations}")
    if not config.style_layers:
        raise CnnkitError("give at least one style layer")
    lw = config.style_layer_weights
    if lw is not None and len(lw) != len(config.style_layers):
        raise ShapeError(
            f"{len(lw)} style layer weights for {len(config.style_layers)} style layers",
            hint="give one --style-layer-weights value per --style-layers name",
        )
    bw = config.style_blend_weights
    if bw is not None and len(bw) != n_styles:
        raise ShapeError(
            f"{len(bw)} style blend weights for {n_styles} style images",
            hint="give one --style-blend-weights value per style image",
        )
    if bw is not None and (sum(bw) <= 0 or min(bw) < 0):
        raise CnnkitError("style blend weights must be >= 0 with a positive sum")
