"""The Networks tab's digit canvas: LeNet-5 (trained on scikit-learn's digits on first use, then
cached) classifies a drawing; :mod:`cnnkit.train.digits` does the work."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, File, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload
from cnnkit.serve.uploads import decode_rgb, read_upload
from cnnkit.serve.webapp import web_state

router = APIRouter(prefix="/digits", tags=["digits"])


def _rounded(a: np.ndarray, digits: int = 4) -> Any:
    return np.round(a.astype(np.float64), digits).tolist()


@router.post("/classify", summary="Classify a drawn digit; probabilities and feature maps")
async def classify(
    request: Request,
    file: UploadFile = File(
        ..., description="the drawing (PNG), ink dark on light or light on dark"
    ),
    who: Principal = QueryKey,
) -> dict[str, Any]:
    from cnnkit.train.digits import classify_drawing

    state = request.app.state
    upload = await read_upload(file, state.config.max_upload_bytes)
    web = web_state(request)

    # the first call trains the model (seconds; longer on a busy machine): not under the
    # request time-out, which is for inference
    model, trained_now = await run_in_threadpool(web.digits)

    def work() -> dict[str, Any]:
        gray = decode_rgb(upload, state.config.max_pixels).astype(np.float64).mean(axis=2) / 255.0
        pred = classify_drawing(model, gray)
        return {
            "digit": pred.digit,
            "probabilities": pred.probabilities,
            "digit8": _rounded(pred.digit8, 3),
            "feature_maps": {name: _rounded(m) for name, m in pred.feature_maps.items()},
            "trained_now": trained_now,
        }

    return await offload(request, work)


@router.get("/example", summary="One of scikit-learn's digits, 8x8 in [0, 1]")
async def example(digit: int = Query(3, ge=0, le=9), who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.train.digits import example_digit

    return {"digit": digit, "image": _rounded(example_digit(digit), 4)}
