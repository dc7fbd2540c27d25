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
INITS = ("auto", "noise", "content", "content+noise", "fast")
OPTIMIZERS = ("lbfgs", "adam")

ImageInput = str | Path | Image.Image | np.ndarray


class DivergedError(CnnkitError):
    """The loss became NaN or infinite."""


@dataclass
class StyleConfig:
    """Every option of :func:`transfer` (the CLI flags have the same names)."""

    size: int = 512  # longest side of the output, px
    style_scale: float = 1.0  # style images' longest side = style_scale * size
    iterations: int = 300  # function evaluations at the first scale (see scale_schedule)
    optimizer: str = "lbfgs"  # "lbfgs" or "adam"
    lr: float | None = None  # step size; default 1.0 (L-BFGS) or 0.02 (Adam)
    alpha: float = 1.0  # content weight
    beta: float = 10.0  # style weight (losses normalised: see ``normalize``)
    content_layer: str = "conv4_2"
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS
    style_layer_weights: Sequence[float] | None = None  # lambda[l]; default 1/L each
    style_blend_weights: Sequence[float] | None = None  # one per style image; default equal
    tv_weight: float = 0.0  # weight of the total-variation smoothness term
    # "auto" (default): "fast" (the fast method's G) when its networks are installed and the
    # images are at least 32 px, else "content"; or "noise", "content", "content+noise", "fast"
    init: str = "auto"
    noise_ratio: float = 0.6  # share of noise in "content+noise" (the notes use 0.6)
    preserve_colors: bool = False  # transfer luminance only; keep the content's colours
    multiscale: bool = False  # coarse to fine at any size (always above MULTISCALE_ABOVE px)
    seed: int = 0  # seeds the noise init; same seed, same output
    save_every: int = 0  # call on_snapshot every N iterations (0: never)
    backbone: str = "auto"  # "auto", "vgg19" or "random-vgg19"
    weights: str | Path | None = None  # VGG-19 checkpoint file
    download: bool = False  # allow downloading the ImageNet weights
    normalize: bool = True  # divide each layer's cost by its value for G = 0 (see docs)
    pooling: str | None = None  # "max" (default, both backbones) or "avg"
    random_seed: int = RANDOM_SEED  # seed of the random backbone's weights
    normalize_on: str = "content"  # random backbone: unit variance on these images
    per_channel: bool = True  # random backbone: unit variance per channel (else per layer)
    device: str = "cpu"  # "cpu", "cuda", ... or "auto"
    precision: str = "auto"  # "auto" (bf16 where the CPU has it), "fp32" or "bf16"
    # channels-last convolutions inside the forward; None (auto): on AVX-512 / AMX CPUs
    channels_last: bool | None = None
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
    compute: str = ""  # which path ran: precision, memory format, CPU (transfer.compute_path)
    scales: list[tuple[int, int]] = field(
        default_factory=list
    )  # (size px, iterations), coarse first

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


#: Peak memory of the optimisation per content pixel (activations kept for the backward, their
#: gradients, L-BFGS history), and the fixed part (torch, the truncated VGG-19): measured with
#: bench/style.py (984 MB peak RSS at 512x341 px, bf16 autocast) plus a margin.
BYTES_PER_PIXEL = 4500
BASE_BYTES = 600 * 2**20
#: The same with the feature extractor checkpointed (only the returned layers kept for the
#: backward, the rest recomputed), which the scales above CHECKPOINT_PIXELS use.
CHECKPOINT_BYTES_PER_PIXEL = 1300
CHECKPOINT_PIXELS = 1024 * 1024
#: Coarse-to-fine: sizes above MULTISCALE_ABOVE start at a scale of at most MULTISCALE_BASE px,
#: doubling to the final size; each finer scale gets a quarter of the previous one's iterations
#: (4x the pixels per iteration, so every scale costs about the same time).
MULTISCALE_ABOVE = 1024
MULTISCALE_BASE = 512


def scale_schedule(config: StyleConfig) -> list[tuple[int, int]]:
    """``(size, iterations)`` per scale, coarsest first.

    One scale ``(size, iterations)`` up to ``MULTISCALE_ABOVE`` px; above it (or with
    ``multiscale``) the size is halved until it is at most ``MULTISCALE_BASE`` (at least one halving
    with ``multiscale``; never below 32 px), and scale k gets ``iterations / 4^k`` (at least 1):
    2048 px, 300 iterations -> (512, 300), (1024, 75), (2048, 18).
    """
    sizes = [config.size]
    if config.multiscale or config.size > MULTISCALE_ABOVE:
        while sizes[0] // 2 >= 32 and (
            sizes[0] > MULTISCALE_BASE or (config.multiscale and len(sizes) == 1)
        ):
            sizes.insert(0, sizes[0] // 2)
    its = config.iterations
    return [(size, max(1, its // 4**k) if its else 0) for k, size in enumerate(sizes)]


def memory_estimate(size: tuple[int, int]) -> int:
    """Bytes of peak memory to optimise a ``(W, H)`` image (its finest scale: the coarser ones
    need less and are freed before it), checkpointed above ``CHECKPOINT_PIXELS``."""
    pixels = size[0] * size[1]
    per_pixel = CHECKPOINT_BYTES_PER_PIXEL if pixels > CHECKPOINT_PIXELS else BYTES_PER_PIXEL
    return BASE_BYTES + per_pixel * pixels


def available_memory() -> int:
    """Bytes of memory available to this process now (Linux MemAvailable; else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def layer_depth(name: str) -> tuple[int, int]:
    """Order of a VGG layer name by depth: conv4_2 -> (4, 2), pool4 -> (4, 99); unknown (0, 0)."""
    import re

    m = re.fullmatch(r"(conv|relu|pool)(\d+)(?:_(\d+))?", name)
    if m is None:
        return 0, 0  # unknown names are reported by build_extractor
    return int(m.group(2)), (99 if m.group(1) == "pool" else int(m.group(3) or 0))


def _fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    w, h = size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def check_sizes(
    config: StyleConfig,
    content_size: tuple[int, int],
    style_sizes: Sequence[tuple[int, int]],
    sizes: Sequence[int],
    deepest_layer: str,
) -> None:
    """Refuse, before any work, images the layers cannot take and sizes memory cannot hold.

    Each pooling layer halves the image, so the layers up to ``deepest_layer`` (block b of
    VGG-19) need a short side of at least 2^(b-1) px (2^b for ``pool<b>``) in the content image
    at every scale and in each style image. Memory is estimated by :func:`memory_estimate`
    against what is available now.
    """
    block, index = layer_depth(deepest_layer)
    need = 2 ** max(0, block - (0 if index == 99 else 1))
    for size in sizes:
        checks = [("content", content_size, size, 1.0)]
        style_longest = max(16, round(size * config.style_scale))
        checks += [
            (f"style {i + 1}", s, style_longest, config.style_scale)
            for i, s in enumerate(style_sizes)
        ]
        for what, original, longest, scale in checks:
            w, h = _fit(original, longest)
            if min(w, h) < need:
                ratio = max(original) / min(original)
                least = -(-need * ratio // scale) if scale > 0 else need
                raise CnnkitError(
                    f"the {what} image would be {w}x{h} px at --size {size}; the layers up to "
                    f"{deepest_layer} need at least {need} px on the short side",
                    hint=f"use --size {int(least) * (2 if size < config.size else 1)} or more, "
                    "or a less elongated image",
                )
    w, h = _fit(content_size, config.size)
    estimate = memory_estimate((w, h))
    available = available_memory()
    if estimate > 0.8 * available:
        raise CnnkitError(
            f"--size {config.size} ({w}x{h} px) needs about {estimate / 2**30:.1f} GiB of memory, "
            f"more than the {available / 2**30:.1f} GiB available",
            hint="use a smaller --size, or --method fast (tiled, up to 2048 px)",
        )
