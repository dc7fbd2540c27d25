"""Neural style transfer: minimise J(G) = alpha J_content(C, G) + beta J_style(S, G) over G.

:func:`transfer` is the whole algorithm of the notes:

1. load the content image C and the style image(s) S, resize them (``size``, ``style_scale``);
2. build a frozen, truncated feature extractor (:mod:`cnnkit.style.backbone`);
3. compute the targets once, under ``torch.inference_mode``: a[l](C) at the content layer and the
   Gram matrices G[l](S) at the style layers (blended when there are several styles);
4. initialise G (noise, the content image, or content plus noise);
5. minimise J(G) with L-BFGS (default) or Adam, one function evaluation per iteration.

It returns the image ``(H, W, 3)`` float32 in [0, 1] and the loss :class:`History`. Ctrl-C stops the
loop and returns what is done so far (``history.interrupted``); a NaN loss raises
:class:`DivergedError`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.cpu import bf16_native
from cnnkit.errors import CnnkitError
from cnnkit.style.backbone import build_extractor
from cnnkit.style.config import (
    CHECKPOINT_PIXELS,
    DEFAULT_STYLE_LAYERS,
    DivergedError,
    History,
    ImageInput,
    StyleConfig,
    check_config,
    check_sizes,
    layer_depth,
    scale_schedule,
)
from cnnkit.style.costs import (
    content_cost,
    gram_matrix_sliced,
    gram_style_cost_lean,
    total_variation,
)
from cnnkit.style.images import (
    _luminance_only,
    _pick_device,
    _pil_to_tensor,
    _recolor,
    _resize_longest,
    _to_pil,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_STYLE_LAYERS",
    "DivergedError",
    "History",
    "StyleConfig",
    "compute_path",
    "transfer",
]


#: The largest size at which the random backbone's normalisation is measured.
NORMALIZE_MAX = 1024


class _Objective:
    """J(G) with its targets computed once. Call it on G ``(1, 3, H, W)`` -> the four terms."""

    def __init__(
        self,
        config: StyleConfig,
        extractor: torch.nn.Module,
        content: torch.Tensor,
        styles: list[torch.Tensor],
        blend: list[float],
    ) -> None:
        self.config = config
        self.extractor = extractor  # fp32, or bf16 (FeatureExtractor.set_dtype): bf16 maps
        self.layers = list(config.style_layers)
        n = len(self.layers)
        lambdas = list(config.style_layer_weights or [1.0 / n] * n)
        with torch.inference_mode():
            a_G0 = self.extractor(content)  # also gives the shapes of G's activations
            a_C = a_G0[config.content_layer].float()
            shapes = {name: a.shape for name, a in a_G0.items()}
            del a_G0  # a 2048 px image's maps are GBs: hold one image's at a time
            # style targets per position, blended over style images: sum_s w_s G(S_s) / n_HW(S_s)
            targets = [torch.zeros(()) for _ in self.layers]
            for w, style in zip(blend, styles, strict=True):
                a_S = self.extractor(style)
                for i, name in enumerate(self.layers):
                    n_hw = a_S[name].shape[2] * a_S[name].shape[3]
                    targets[i] = targets[i] + w * gram_matrix_sliced(a_S[name]) / n_hw
                del a_S
        self.a_C = a_C.clone()
        self.G_S = []
        self.lambdas = []
        for i, name in enumerate(self.layers):
            n_hw = shapes[name][2] * shapes[name][3]
            G_S = (targets[i] * n_hw).clone()  # at G's number of positions
            self.G_S.append(G_S)
            scale = 1.0
            if config.normalize:  # J_style[l](S, G=0) = ||G_S||^2 / (2 n_H n_W n_C)^2
                _, n_C, n_H, n_W = shapes[name]
                scale = float(torch.sum(G_S.double() ** 2)) / (2 * n_H * n_W * n_C) ** 2
            self.lambdas.append(lambdas[i] / max(scale, 1e-30))
        self.content_scale = 1.0
        if config.normalize:  # J_content(C, G=0)
            self.content_scale = max(
                float(content_cost(self.a_C, torch.zeros_like(self.a_C))), 1e-30
            )

    def __call__(self, G: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cfg = self.config
        a_G = self.extractor(G)
        J_content = content_cost(self.a_C, a_G[cfg.content_layer].float()) / self.content_scale
        J_style = torch.zeros((), device=G.device)
        for name, G_S, lam in zip(self.layers, self.G_S, self.lambdas, strict=True):
            # one node per layer: Gram matrix and its gradient in the map's dtype and layout
            J_style = J_style + lam * gram_style_cost_lean(G_S, a_G[name])
        tv = total_variation(G) if cfg.tv_weight else torch.zeros((), device=G.device)
        c, s, t = cfg.alpha * J_content, cfg.beta * J_style, cfg.tv_weight * tv
        return c + s + t, c, s, t


def _initial(
    config: StyleConfig,
    content: torch.Tensor,
    previous: torch.Tensor | None,
    fast: torch.Tensor | None = None,
):
    if previous is None and fast is not None:  # --init fast
        previous = fast
    if previous is not None:  # multiscale: upsample the coarser result
        if previous.shape[2:] == content.shape[2:]:
            return previous.clone()
        return F.interpolate(previous, size=content.shape[2:], mode="bicubic", align_corners=False)
    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.rand(content.shape, generator=generator).to(content.device)
    if config.init == "noise":
        return noise
    if config.init in ("content", "auto"):  # auto without the fast networks: content
        return content.clone()
    return config.noise_ratio * noise + (1 - config.noise_ratio) * content


def _optimise(
    config: StyleConfig,
    objective: _Objective,
    G0: torch.Tensor,
    history: History,
    bar: Any,
    on_snapshot: Callable[[int, np.ndarray], None] | None,
    offset: int,
) -> torch.Tensor:
    # the optimised parameter stays contiguous NCHW: torch.optim.LBFGS fails on channels_last
    # L-BFGS's first step moves the pixels by a total (L1) of lr, which is nothing for an image
    # of 10^5 values: the optimiser works on u = G / scale so that it moves each pixel by about
    # 1/50 on average. Later steps are quasi-Newton steps, unaffected by the scale.
    scale = 0.02 * G0.numel() if config.optimizer == "lbfgs" and config.lbfgs_rescale else 1.0
    u = (G0.detach() / scale).contiguous().requires_grad_(True)
    lr = config.resolved_lr()
    opt: torch.optim.Optimizer
    if config.optimizer == "lbfgs":
        # one step() runs the whole budget; every closure call is one counted iteration (a
        # function evaluation, as neural-style counts them). The strong-Wolfe line search
        # keeps J decreasing, so G does not jump far from the content early on.
        opt = torch.optim.LBFGS(
            [u],
            lr=lr,
            max_iter=max(1, config.iterations),
            max_eval=2 * max(1, config.iterations),
            # 2 vectors of G's size per step: at most ~512 MB (5 steps at 2048 px, 50 at 512)
            history_size=max(5, min(50, 2**29 // (8 * G0.numel()))),
            tolerance_grad=-1,
            tolerance_change=-1,
            line_search_fn="strong_wolfe" if config.line_search else None,
        )
    else:
        opt = torch.optim.Adam([u], lr=lr)
    best: dict[str, Any] = {"total": math.inf, "G": G0.detach().clone().contiguous()}
    count = 0

    def closure() -> torch.Tensor:
        nonlocal count
        if count >= config.iterations:
            raise _BudgetSpent
        count += 1
        it = offset + count
        opt.zero_grad(set_to_none=True)
        G = u * scale if scale != 1.0 else u
        total, c, s, t = objective(G)
        value = float(total.detach())
        if not math.isfinite(value):
            raise DivergedError(
                f"the loss became {value} at iteration {it}",
                hint="lower --lr or --beta (or use --optimizer lbfgs)",
            )
        cv, sv = float(c.detach()), float(s.detach())
        history.append(it, cv, sv, float(t.detach()), value)
        if value < best["total"]:  # keep the best image evaluated
            best["total"] = value
            best["G"].copy_(G.detach())
        bar.update(1)
        bar.set_postfix(content=f"{cv:.3g}", style=f"{sv:.3g}", J=f"{value:.3g}")
        if on_snapshot is not None and config.save_every and it % config.save_every == 0:
            on_snapshot(it, _to_array(best["G"]))
        total.backward()
        return total

    try:
        while count < config.iterations:
            opt.step(closure)  # type: ignore[arg-type]
            if config.optimizer == "adam":
                with torch.no_grad():
                    u.clamp_(0, 1)
    except _BudgetSpent:
        pass
    except KeyboardInterrupt:
        history.interrupted = True
    return best["G"]


class _BudgetSpent(Exception):
    """Raised by the closure when the iteration budget is used up (inside a line search)."""


def _to_array(G: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) float32 in [0, 1]."""
    return G.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().copy()


def _fast_start(
    config: StyleConfig,
    content: Image.Image,
    styles: list[Image.Image],
    blend: list[float],
    size: int,
    device: torch.device,
) -> torch.Tensor | None:
    """--init fast: the fast method's image at ``size`` (its luminance with --preserve-colors).

    ``auto`` does the same when the fast networks are installed and every image is at least
    32 px at this size, and otherwise returns None (start from the content).
    """
    if config.init not in ("fast", "auto"):
        return None
    from cnnkit.errors import CnnkitError as _Missing
    from cnnkit.style.fast import MIN_SIDE, stylize_fast

    if config.init == "auto":
        from cnnkit.style.config import _fit
        from cnnkit.style.fast_onnx import model_file

        try:
            model_file("predict")
        except _Missing:
            return None
        style_longest = max(16, round(size * config.style_scale))
        shapes = [_fit(content.size, size)] + [_fit(s.size, style_longest) for s in styles]
        shapes += [content.size] + [s.size for s in styles]  # the fast path reads the originals
        if min(min(w, h) for w, h in shapes) < MIN_SIDE:
            return None

    fast = stylize_fast(content, styles, weights=blend, size=size, precision=config.precision)
    G = torch.from_numpy(np.ascontiguousarray(fast.image.transpose(2, 0, 1)[None])).to(device)
    log.info("--init fast: the fast method's image in %.2f s", fast.seconds)
    return _luminance_only(G) if config.preserve_colors else G


def compute_path(config: StyleConfig, device: torch.device) -> tuple[bool, bool, str]:
    """(bf16, channels-last, a description) for ``config.precision`` and ``config.channels_last``
    on ``device``, read from what the CPU reports.

    ``precision="auto"``: bf16 network and maps where the hardware computes bf16 natively
    (:func:`cnnkit.cpu.bf16_native`: CPU flags AVX-512 BF16 or AMX and torch's kernels at that
    ISA; CUDA 8.0+), fp32 elsewhere. ``channels_last=None`` (auto): on
    where ATen runs its AVX-512 (or AMX) kernels, where oneDNN's convolutions and their backward
    are faster in NHWC (measured per forward+backward at 512 px, CPU time: bf16 1.27x, fp32
    1.22x; docs/style.md); NCHW on other CPUs (AVX2: no gain measured on real hardware) and on
    GPUs. The Gram matrices, their differences and the costs are always summed in fp32.
    """
    native = bf16_native(device)
    bf16 = config.precision == "bf16" or (config.precision == "auto" and native)
    cap = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else device.type
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = device.type == "cpu" and cap in ("AVX512", "AMX")
    parts = [
        "bf16 network and maps, fp32 Gram sums and costs" if bf16 else "fp32",
        "channels-last" if channels_last else "NCHW",
        f"{cap}, {'native' if native else 'no native'} bf16",
    ]
    return bf16, bool(channels_last), "; ".join(parts)


def transfer(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    config: StyleConfig | None = None,
    *,
    on_snapshot: Callable[[int, np.ndarray], None] | None = None,
    **options: Any,
) -> tuple[np.ndarray, History]:
    """Paint ``content`` in the style of ``styles``; return ``(image, history)``.

    Args:
        content: a file path, a PIL image, or an ``(H, W, 3)`` array (float in [0, 1] or uint8).
        styles: one style image or a list of them (blended by ``style_blend_weights``). They may
            have any size and aspect; grayscale and RGBA are converted to RGB.
        config: a :class:`StyleConfig`; keyword ``options`` override its fields.
        on_snapshot: called as ``on_snapshot(iteration, image)`` every ``save_every`` iterations.

    Returns:
        ``image``: ``(H, W, 3)`` float32 in [0, 1], longest side ``size``;
        ``history``: a :class:`History` of the losses (``history.plot(path)`` draws them).

    Example:
        >>> from cnnkit.io import sample_path
        >>> image, history = transfer(sample_path("chelsea"), sample_path("gravel"),
        ...                           size=128, iterations=20)  # doctest: +SKIP
    """
    config = replace(config or StyleConfig(), **options)
    style_list: list[ImageInput] = (
        list(styles) if isinstance(styles, (list, tuple)) else [styles]  # type: ignore[list-item]
    )
    if not style_list:
        raise CnnkitError("give at least one style image")
    check_config(config, len(style_list))
    device = _pick_device(config.device)
    use_bf16, channels_last, history_compute = compute_path(config, device)
    content_pil = _to_pil(content, "the content image")
    style_pils = [_to_pil(s, f"style image {i + 1}") for i, s in enumerate(style_list)]
    blend = list(config.style_blend_weights or [1.0] * len(style_pils))
    blend = [w / sum(blend) for w in blend]

    schedule = scale_schedule(config)
    sizes = [size for size, _ in schedule]

    layers = [config.content_layer, *config.style_layers]
    check_sizes(
        config,
        content_pil.size,
        [s.size for s in style_pils],
        sizes,
        max(layers, key=layer_depth),
    )
    final_content = _pil_to_tensor(
        _resize_longest(content_pil, config.size, "the content image"), device
    )
    color_source = final_content
    if config.preserve_colors:
        final_content = _luminance_only(final_content)
    # the random backbone's per-channel scales are measured at most at NORMALIZE_MAX px: the
    # statistics of a downscaled image are close, and a 2048 px forward in fp32 needs ~4 GB
    norm_size = min(config.size, NORMALIZE_MAX)
    norm_images = [final_content]
    if norm_size < config.size:
        norm = _pil_to_tensor(_resize_longest(content_pil, norm_size), device)
        norm_images = [_luminance_only(norm) if config.preserve_colors else norm]
    if config.normalize_on == "content+style":
        style_longest = max(16, round(norm_size * config.style_scale))
        for s in style_pils:
            t = _pil_to_tensor(_resize_longest(s, style_longest, "a style image"), device)
            norm_images.append(
                _luminance_only(t, like=final_content) if config.preserve_colors else t
            )
    backbone = build_extractor(
        layers,
        content=[t.cpu() for t in norm_images],
        per_channel=config.per_channel,
        backbone=config.backbone,
        weights=config.weights,
        download=config.download,
        pooling=config.pooling,
        seed=config.random_seed,
        channels_last=channels_last,
    )
    extractor = backbone.extractor.to(device)
    if use_bf16:  # after the random backbone's normalisation, which runs in fp32
        extractor.set_dtype(torch.bfloat16)
    log.info("gatys: %s", history_compute)
    fast_start = _fast_start(config, content_pil, style_pils, blend, sizes[0], device)
    history = History(backbone=backbone.name, scales=schedule, compute=history_compute)
    start = time.perf_counter()
    G: torch.Tensor | None = None
    from cnnkit.progress import progress

    total = sum(its for _, its in schedule)
    with progress(total=total, desc="style", unit="it") as bar:
        offset = 0
        for scale_index, (size, iterations) in enumerate(schedule):
            if len(schedule) > 1:
                bar.set_description(f"scale {scale_index + 1}/{len(schedule)} ({size} px)")
            C = _pil_to_tensor(_resize_longest(content_pil, size), device)
            style_longest = max(16, round(size * config.style_scale))
            S = [_pil_to_tensor(_resize_longest(s, style_longest), device) for s in style_pils]
            if config.preserve_colors:
                C = _luminance_only(C)
                S = [_luminance_only(s, like=C) for s in S]
            extractor.checkpoint = C.shape[2] * C.shape[3] > CHECKPOINT_PIXELS
            objective = _Objective(config, extractor, C, S, blend)
            log.info(
                "scale %d/%d: %d px, %d iterations",
                scale_index + 1,
                len(schedule),
                size,
                iterations,
            )
            G = _optimise(
                replace(config, iterations=iterations),
                objective,
                _initial(config, C, G, fast_start),
                history,
                bar,
                on_snapshot,
                offset=offset,
            )
            offset += iterations
            del objective
            if history.interrupted:
                break
    assert G is not None
    history.seconds = time.perf_counter() - start
    if G.shape[2:] != final_content.shape[2:]:  # interrupted at a coarse scale
        G = F.interpolate(G, size=final_content.shape[2:], mode="bicubic", align_corners=False)
    if config.preserve_colors:
        G = _recolor(G, color_source)
    return _to_array(G), history
