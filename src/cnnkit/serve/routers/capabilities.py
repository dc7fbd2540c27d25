"""The other capabilities over HTTP: edge maps of a photo, and the layer table of a network."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload, on_photo
from cnnkit.serve.uploads import Upload

router = APIRouter(tags=["capabilities"])


@router.post(
    "/edges",
    summary="Edge map of a photo (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def edges(
    request: Request,
    file: UploadFile = File(..., description="a photo"),
    kernel: str = Form("sobel", description="vertical, horizontal, sobel, scharr, prewitt, ..."),
    who: Principal = QueryKey,
) -> Response:
    from cnnkit.edges import KERNEL_NAMES

    if kernel not in KERNEL_NAMES:
        raise CnnkitError(
            f"unknown kernel {kernel!r}", hint="use one of: " + ", ".join(KERNEL_NAMES)
        )

    def work(image: np.ndarray, _: Upload) -> bytes:
        from PIL import Image

        from cnnkit.edges import detect
        from cnnkit.edges.detect import is_signed, to_display

        rgb = image.astype(np.float32) / 255.0
        response = detect(rgb, kernel)
        picture = to_display(response, is_signed(kernel))
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG")
        return buffer.getvalue()

    return Response(await on_photo(request, file, work), media_type="image/png")


@router.get("/models", summary="Names of the classic networks")
async def models(request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.models import list_models

    return {"items": list_models()}


@router.get("/models/{name}/summary", summary="Layer table of a network (JSON)")
async def model_summary(
    name: str,
    request: Request,
    input: str | None = Query(None, description="input size, e.g. 3x224x224 or 224"),
    who: Principal = QueryKey,
) -> dict[str, Any]:
    from cnnkit.models import list_models
    from cnnkit.models.summary import parse_input_size, summarize_model

    if name.lower() not in {m.lower() for m in list_models()}:
        raise NotFoundError(f"no model named {name!r}", hint="list them: GET /api/v1/models")
    size = parse_input_size(input) if input else None

    def work() -> dict[str, Any]:
        return summarize_model(name, size).as_dict()

    return await offload(request, work)
