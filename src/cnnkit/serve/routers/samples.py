"""Shipped example images (inside installed packages, nothing downloaded) for the web app's
pickers, and the Edges tab's two pictures side by side."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload
from cnnkit.serve.uploads import decode_rgb, read_upload

router = APIRouter(tags=["samples"])

#: Samples are sent with this longest side at most (the pickers upload them back).
SAMPLE_SIDE = 512


@router.get("/samples", summary="Names of the shipped example images")
async def samples(who: Principal = QueryKey) -> dict[str, Any]:
    from cnnkit.io import SAMPLE_NAMES

    return {"items": [{"name": n} for n in SAMPLE_NAMES]}


@router.get(
    "/samples/{name}",
    summary="A shipped example image (JPEG, longest side 512)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def sample(name: str, request: Request, who: Principal = QueryKey) -> Response:
    from cnnkit.io import encode_image, load_image_pil, sample_path

    def work() -> bytes:
        img = load_image_pil(sample_path(name))
        img.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
        return encode_image(img, "JPEG", quality=92)

    data = await offload(request, work)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@router.post("/edges/views", summary="Signed response and magnitude of a photo (two PNGs)")
async def edge_views(
    request: Request,
    file: UploadFile = File(..., description="a photo"),
    kernel: str = Form("sobel"),
    who: Principal = QueryKey,
) -> dict[str, Any]:
    from cnnkit.edges import KERNEL_NAMES, views
    from cnnkit.errors import CnnkitError
    from cnnkit.io import encode_image

    if kernel not in KERNEL_NAMES:
        raise CnnkitError(
            f"unknown kernel {kernel!r}", hint="use one of: " + ", ".join(KERNEL_NAMES)
        )
    state = request.app.state
    upload = await read_upload(file, state.config.max_upload_bytes)

    def work() -> dict[str, Any]:
        rgb = decode_rgb(upload, state.config.max_pixels).astype(np.float32) / 255.0
        signed, magnitude = views(rgb, kernel)
        url = "data:image/png;base64,"
        return {
            "kernel": kernel,
            "signed": url + base64.b64encode(encode_image(signed)).decode(),
            "magnitude": url + base64.b64encode(encode_image(magnitude)).decode(),
        }

    return await offload(request, work)
