"""The Convolution tab's third view: a 3x3 filter learned by gradient descent
(:func:`cnnkit.edges.learn_kernel`) to reproduce a target edge map of a shipped photo."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload

router = APIRouter(prefix="/conv", tags=["convolution"])

#: The photo is shrunk to this longest side: enough edges, a few ms per step.
LEARN_SIDE = 64


class LearnIn(BaseModel):
    target: str = Field("sobel", description="the kernel whose map to reproduce (x direction)")
    steps: int = Field(200, ge=1, le=1000)
    image: str = Field("camera", description="a shipped sample image (GET /samples)")
    seed: int = 0


@router.post("/learn", summary="Learn a 3x3 filter from a target edge map, step by step")
async def learn(body: LearnIn, request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.edges import KERNEL_NAMES, filter_image, get_kernels, learn_kernel, to_grayscale
    from cnnkit.errors import CnnkitError
    from cnnkit.io import load_image_pil, sample_path

    if body.target not in KERNEL_NAMES:
        raise CnnkitError(
            f"unknown kernel {body.target!r}", hint="use one of " + ", ".join(KERNEL_NAMES)
        )

    def work() -> dict[str, Any]:
        img = load_image_pil(sample_path(body.image))
        img.thumbnail((LEARN_SIDE, LEARN_SIDE))
        gray = to_grayscale(np.asarray(img, dtype=np.float64) / 255.0)
        kernel = get_kernels(body.target)[0]
        target = filter_image(gray, kernel[None], "same")[0]
        kernels, biases = [], []

        def keep(step: int, loss: float, k: np.ndarray, b: float) -> None:
            kernels.append(np.round(k, 5).tolist())
            biases.append(round(b, 6))

        result = learn_kernel(
            gray, target, padding="same", steps=body.steps, seed=body.seed, callback=keep
        )
        return {
            "target_kernel": kernel.tolist(),
            "losses": result.losses,
            # index 0: the random start (before any step), then one per step
            "kernels": [np.round(result.start, 5).tolist(), *kernels],
            "biases": [result.start_bias, *biases],
            "kernel": result.kernel.tolist(),
            "bias": result.bias,
            "image": body.image,
            "size": list(gray.shape),
        }

    return await offload(request, work)
