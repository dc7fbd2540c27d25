"""The cost functions of neural style transfer, in the notes' notation.

Activations ``a`` are NCHW tensors ``(N, n_C, n_H, n_W)``: ``a[l](C)`` for the content image,
``a[l](S)`` for a style image and ``a[l](G)`` for the generated image, at hidden layer ``l``.

- :func:`content_cost`     J_content(C, G) = 1 / (4 n_H n_W n_C) * sum (a[l](C) - a[l](G))^2
- :func:`gram_matrix`      G[l]_kk' = sum_i sum_j a[l]_ijk a[l]_ijk'  (A A^T, A = a unrolled)
- :func:`layer_style_cost` J_style[l](S, G) = 1 / (2 n_H n_W n_C)^2 * sum_kk' (G(S) - G(G))^2
- :func:`gram_style_cost`  the same from a precomputed (or blended) style Gram matrix
- :func:`style_cost`       J_style(S, G) = sum_l lambda[l] J_style[l](S, G)
- :func:`total_variation`  TV(G) = sum (G_{i+1,j} - G_{i,j})^2 + (G_{i,j+1} - G_{i,j})^2, averaged
- :func:`total_cost`       J(G) = alpha J_content + beta J_style (+ tv_weight TV(G))

Each function is pure and differentiable; the tests check them against hand-computed values and
with ``torch.autograd.gradcheck`` in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from cnnkit.errors import ShapeError

__all__ = [
    "content_cost",
    "gram_matrix",
    "gram_matrix_fp32",
    "gram_matrix_sliced",
    "gram_style_cost",
    "gram_style_cost_lean",
    "layer_style_cost",
    "style_cost",
    "total_cost",
    "total_variation",
]


def _check_nchw(a: torch.Tensor, name: str) -> None:
    if a.dim() != 4:
        raise ShapeError(f"{name} must be an (N, n_C, n_H, n_W) tensor, got shape {tuple(a.shape)}")


def content_cost(a_C: torch.Tensor, a_G: torch.Tensor) -> torch.Tensor:
    """J_content(C, G) = 1 / (4 n_H n_W n_C) * sum_all (a[l](C) - a[l](G))^2.

    Args:
        a_C: content activations at layer l, ``(N, n_C, n_H, n_W)``.
        a_G: generated-image activations at the same layer, same shape.

    Returns:
        A scalar tensor (summed over the batch ``N``).

    Example:
        >>> a = torch.ones(1, 2, 2, 2)
        >>> float(content_cost(a, torch.zeros_like(a)))  # 8 / (4 * 2 * 2 * 2)
        0.25
    """
    _check_nchw(a_C, "a_C")
    if a_C.shape != a_G.shape:
        raise ShapeError(
            f"a_C and a_G must have the same shape, got {tuple(a_C.shape)} and {tuple(a_G.shape)}"
        )
    _, n_C, n_H, n_W = a_G.shape
    return torch.sum((a_C - a_G) ** 2) / (4 * n_H * n_W * n_C)


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """The style (Gram) matrix G[l]_kk' = sum_i sum_j a[l]_ijk a[l]_ijk', batched as A A^T.

    Args:
        a: activations ``(N, n_C, n_H, n_W)``.

    Returns:
        ``(N, n_C, n_C)``: for each image, the unrolled ``A`` of shape ``(n_C, n_H n_W)`` times
        its transpose. Entry (k, k') measures how much channels k and k' fire together.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 2, 2))[0]
        tensor([[4., 4.],
                [4., 4.]])
    """
    _check_nchw(a, "a")
    N, n_C, n_H, n_W = a.shape
    A = a.reshape(N, n_C, n_H * n_W)  # (N, n_C, n_H n_W)
    return torch.bmm(A, A.transpose(1, 2))  # (N, n_C, n_C)


def layer_style_cost(a_S: torch.Tensor, a_G: torch.Tensor) -> torch.Tensor:
    """J_style[l](S, G) = 1 / (2 n_H n_W n_C)^2 * sum_k sum_k' (G(S)_kk' - G(G)_kk')^2.

    Args:
        a_S: style activations ``(N, n_C, n_H_S, n_W_S)``. The style image may have another size
            than the generated one: its Gram matrix is then rescaled to the generated image's
            number of positions, ``G(S) * (n_H n_W) / (n_H_S n_W_S)``, so the two compare. With
            equal sizes this is exactly the notes' formula.
        a_G: generated activations ``(N, n_C, n_H, n_W)``.

    Returns:
        A scalar tensor (summed over the batch).
    """
    _check_nchw(a_S, "a_S")
    _check_nchw(a_G, "a_G")
    if a_S.shape[:2] != a_G.shape[:2]:
        raise ShapeError(
            "a_S and a_G must have the same (N, n_C), got "
            f"{tuple(a_S.shape)} and {tuple(a_G.shape)}"
        )
    n_S = a_S.shape[2] * a_S.shape[3]
    n_G = a_G.shape[2] * a_G.shape[3]
    G_S = gram_matrix(a_S)
    if n_S != n_G:
        G_S = G_S * (n_G / n_S)
    return gram_style_cost(G_S, a_G)


def gram_style_cost(G_S: torch.Tensor, a_G: torch.Tensor) -> torch.Tensor:
    """J_style[l] from a precomputed style Gram matrix ``G_S`` ``(N, n_C, n_C)``.

    Same formula as :func:`layer_style_cost`; ``G_S`` must already be at ``a_G``'s scale (a sum
    over ``n_H n_W`` positions). Used when the targets are computed once, or blended from several
    style images.
    """
    _check_nchw(a_G, "a_G")
    _, n_C, n_H, n_W = a_G.shape
    if G_S.shape[-2:] != (n_C, n_C):
        raise ShapeError(f"G_S must be (N, {n_C}, {n_C}) for a_G, got {tuple(G_S.shape)}")
    G_G = gram_matrix(a_G)
    return torch.sum((G_S - G_G) ** 2) / (2 * n_H * n_W * n_C) ** 2


#: Positions per partial Gram matrix of a bf16 map: a bf16 matmul rounds its output to bf16
#: (relative 2^-8), so the Gram matrix is summed in fp32 over chunks of this many positions, each
#: rounded once: the rounding errors average out (~2^-8 / sqrt(chunks)) at the same speed.
BF16_CHUNK = 4096


def _unrolled(a: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A view of ``(N, n_C, n_H, n_W)`` as a matrix per image, without a copy when possible:
    ``(N, n_H n_W, n_C)`` for a channels-last map (``True``), else ``(N, n_C, n_H n_W)``."""
    N, n_C, n_H, n_W = a.shape
    if n_C > 1 and a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous():
        return a.permute(0, 2, 3, 1).reshape(N, n_H * n_W, n_C), True
    return a.reshape(N, n_C, n_H * n_W), False


def gram_matrix_fp32(a: torch.Tensor, chunk: int = BF16_CHUNK) -> torch.Tensor:
    """``gram_matrix(a)`` as fp32 ``(N, n_C, n_C)``, computed in ``a``'s own dtype and layout.

    fp32 (or float64) maps: one matmul. bf16 maps: matmuls in bf16 (the fast path on CPUs with
    native bf16) over chunks of ``chunk`` positions, summed in fp32. No copy of ``a`` is made,
    whether it is NCHW or channels-last.
    """
    _check_nchw(a, "a")
    X, rows = _unrolled(a)
    if a.dtype != torch.bfloat16 and a.dtype != torch.float16:
        G = X.transpose(1, 2) @ X if rows else X @ X.transpose(1, 2)
        return G if a.dtype == torch.float64 else G.float()
    n = X.shape[1] if rows else X.shape[2]
    total = torch.zeros(a.shape[0], a.shape[1], a.shape[1], device=a.device)
    for start in range(0, n, chunk):
        if rows:
            part = X[:, start : start + chunk]
            total += (part.transpose(1, 2) @ part).float()
        else:
            part = X[:, :, start : start + chunk]
            total += (part @ part.transpose(1, 2)).float()
    return total


def gram_matrix_sliced(a: torch.Tensor, rows: int = 64) -> torch.Tensor:
    """``gram_matrix(a.float())`` of ``(N, n_C, n_H, n_W)`` -> ``(N, n_C, n_C)`` fp32, without an
    fp32 copy of ``a`` (``rows`` is kept for compatibility; see :func:`gram_matrix_fp32`)."""
    if a.dtype in (torch.bfloat16, torch.float16):
        # the targets are computed once: exact fp32 products over slices of rows
        total = torch.zeros(a.shape[0], a.shape[1], a.shape[1], device=a.device)
        for part in a.split(rows, dim=2):
            total += gram_matrix(part.float())
        return total
    return gram_matrix_fp32(a)


class _GramStyleCost(torch.autograd.Function):
    """J_style[l] = ||G_S - A A^T||^2 / (2 n_H n_W n_C)^2 in one node, with
    dJ/dA = -2 (D + D^T) A / norm, D = G_S - A A^T: one matmul for the Gram matrix and one for
    the gradient, both in ``a``'s dtype and memory format (no fp32 copy, no layout change); only
    ``a`` and the small D (fp32) are kept for the backward."""

    @staticmethod
    def forward(ctx: Any, G_S: torch.Tensor, a: torch.Tensor, chunk: int) -> torch.Tensor:
        _, n_C, n_H, n_W = a.shape
        D = G_S.float() - gram_matrix_fp32(a, chunk)
        ctx.save_for_backward(a, D)
        ctx.norm = float(2 * n_H * n_W * n_C) ** 2
        return torch.sum(D**2) / ctx.norm

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, None]:
        a, D = ctx.saved_tensors
        M = ((-2.0 / ctx.norm) * g * (D + D.transpose(1, 2))).to(a.dtype)  # (N, n_C, n_C)
        X, rows = _unrolled(a)
        N, n_C, n_H, n_W = a.shape
        if rows:  # (N, HW, C) @ M^T, M symmetric: the gradient stays channels-last
            grad = (X @ M).reshape(N, n_H, n_W, n_C).permute(0, 3, 1, 2)
        else:
            grad = (M @ X).reshape(N, n_C, n_H, n_W)
        grad_S = 2.0 * g * D / ctx.norm if ctx.needs_input_grad[0] else None
        return grad_S, grad, None


def gram_style_cost_lean(
    G_S: torch.Tensor, a_G: torch.Tensor, chunk: int = BF16_CHUNK
) -> torch.Tensor:
    """``gram_style_cost(G_S, a_G.float())`` in one autograd node, in ``a_G``'s dtype and layout.

    fp32 maps give the same value and gradient as autograd through :func:`gram_style_cost` (up
    to summation order). bf16 maps (bf16 runs) never get an fp32 copy: the Gram matrix comes from
    bf16 matmuls summed in fp32 (:func:`gram_matrix_fp32`) and the gradient from one bf16 matmul,
    in the map's own memory format, so a channels-last map's gradient meets the convolution's
    without a layout conversion. At 2048 px this also saves ~2 GB over the five style layers.
    """
    _check_nchw(a_G, "a_G")
    _, n_C, _, _ = a_G.shape
    if G_S.shape[-2:] != (n_C, n_C):
        raise ShapeError(f"G_S must be (N, {n_C}, {n_C}) for a_G, got {tuple(G_S.shape)}")
    return _GramStyleCost.apply(G_S, a_G, chunk)


def style_cost(
    layer_costs: Sequence[torch.Tensor], lambdas: Sequence[float] | None = None
) -> torch.Tensor:
    """J_style(S, G) = sum_l lambda[l] J_style[l](S, G).

    Args:
        layer_costs: the per-layer costs ``J_style[l]`` (scalars), e.g. from
            :func:`layer_style_cost`.
        lambdas: one weight per layer; default equal weights ``1 / L`` (they sum to 1).
    """
    if len(layer_costs) == 0:
        raise ShapeError("style_cost needs at least one layer cost")
    if lambdas is None:
        lambdas = [1.0 / len(layer_costs)] * len(layer_costs)
    if len(lambdas) != len(layer_costs):
        raise ShapeError(
            f"got {len(lambdas)} lambda weights for {len(layer_costs)} style layers",
            hint="give one weight per style layer",
        )
    total = layer_costs[0] * lambdas[0]
    for cost, lam in zip(layer_costs[1:], lambdas[1:], strict=True):
        total = total + cost * lam
    return total


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """TV(G): the mean squared difference between vertical and horizontal pixel neighbours.

    TV = mean_{i,j} (G_{i+1,j} - G_{i,j})^2 + mean_{i,j} (G_{i,j+1} - G_{i,j})^2, over all
    channels and images. It penalises high-frequency noise and smooths the generated image.

    Args:
        x: images ``(N, C, H, W)`` with ``H, W >= 2``.
    """
    _check_nchw(x, "x")
    if x.shape[2] < 2 or x.shape[3] < 2:
        raise ShapeError(f"total_variation needs H, W >= 2, got shape {tuple(x.shape)}")
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    return torch.mean(dh**2) + torch.mean(dw**2)


def total_cost(
    J_content: torch.Tensor,
    J_style: torch.Tensor,
    alpha: float = 10.0,
    beta: float = 40.0,
    tv: torch.Tensor | None = None,
    tv_weight: float = 0.0,
) -> torch.Tensor:
    """J(G) = alpha J_content(C, G) + beta J_style(S, G) (+ tv_weight TV(G)).

    ``alpha`` and ``beta`` trade content against style (the notes use alpha=10, beta=40); only
    their ratio matters for the result, their scale sets the optimiser's step size.
    """
    J = alpha * J_content + beta * J_style
    if tv is not None and tv_weight:
        J = J + tv_weight * tv
    return J
