"""The Convolution tab's numbers: the course's kernels, the step-through of one 2-D convolution and
convolution over volume, all computed by :mod:`cnnkit.conv`."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload

router = APIRouter(prefix="/conv", tags=["convolution"])

Padding = int | str


class ExplainIn(BaseModel):
    input: list[list[float]] = Field(..., description="the 2-D input, rows of numbers")
    kernel: list[list[float]] = Field(..., description="the f x f filter")
    p: Padding = Field(0, description="padding: 'valid', 'same' or an int >= 0")
    s: int = Field(1, ge=1, le=16, description="stride")
    bias: float = 0.0


class VolumeIn(BaseModel):
    input: list[list[list[float]]] = Field(..., description="(n_C_prev, n_H, n_W)")
    filters: list[list[list[list[float]]]] = Field(..., description="(n_C, n_C_prev, f, f)")
    p: Padding = 0
    s: int = Field(1, ge=1, le=16)


def _array(rows: Any, what: str, ndim: int) -> np.ndarray:
    from cnnkit.errors import ShapeError

    try:
        a = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ShapeError(
            f"{what} has rows of different lengths", hint="make it rectangular"
        ) from exc
    if a.ndim != ndim or a.size == 0:
        raise ShapeError(f"{what} must be a non-empty {ndim}-D array, got shape {a.shape}")
    return a


@router.get("/kernels", summary="The course's 3x3 kernels (x direction for gradient pairs)")
async def kernels(who: Principal = QueryKey) -> dict[str, list[list[float]]]:
    from cnnkit.edges import KERNEL_NAMES, get_kernels

    return {name: get_kernels(name)[0].tolist() for name in KERNEL_NAMES}


@router.post("/explain", summary="One 2-D convolution, step by step")
async def explain(body: ExplainIn, request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.conv import explain_conv2d

    x, k = _array(body.input, "the input", 2), _array(body.kernel, "the filter", 2)

    def work() -> dict[str, Any]:
        e = explain_conv2d(x, k, p=body.p, s=body.s, bias=body.bias)
        return {
            "p": e.p,
            "s": e.s,
            "bias": e.bias,
            "padded": e.padded.tolist(),
            "output": e.output.tolist(),
            "formula_h": e.formula_h,
            "formula_w": e.formula_w,
            "steps": [
                {
                    "h": st.h,
                    "w": st.w,
                    "top": st.top,
                    "left": st.left,
                    "window": st.window.tolist(),
                    "products": st.products.tolist(),
                    "total": st.total,
                }
                for st in e.steps
            ],
        }

    return await offload(request, work)


@router.post("/volume", summary="Convolution over volume: n_C filters over n_C_prev channels")
async def volume(body: VolumeIn, request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.conv import explain_volume
    from cnnkit.errors import ShapeError

    x, w = _array(body.input, "the input", 3), _array(body.filters, "the filters", 4)
    if x.size > 3 * 64 * 64 or w.size > 16 * 3 * 7 * 7:
        raise ShapeError("the volume is too large to explain", hint="use at most 3x64x64")

    def work() -> dict[str, Any]:
        v = explain_volume(x, w, p=body.p, s=body.s)
        return {
            "p": v.p,
            "s": v.s,
            "output": v.output.tolist(),
            "per_channel": v.per_channel.tolist(),
            "shape": v.shape,
        }

    return await offload(request, work)
