"""The Style tab: style transfer jobs (:mod:`cnnkit.style.jobs`): start one, poll its progress,
fetch the improving image and the result, cancel it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from cnnkit.errors import NotFoundError
from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload
from cnnkit.serve.problems import ServiceBusy
from cnnkit.serve.uploads import decode_rgb, read_upload
from cnnkit.serve.webapp import web_state
from cnnkit.style.jobs import JobsBusy

router = APIRouter(prefix="/style/jobs", tags=["style"])


@router.post("", status_code=202, summary="Start a style transfer job")
async def start(
    request: Request,
    content: UploadFile = File(..., description="the content image C"),
    style: UploadFile = File(..., description="the style image S"),
    alpha: float = Form(1.0, ge=0),
    beta: float = Form(10.0, ge=0),
    size: int = Form(128, description="longest side of the result, px (16..512)"),
    iterations: int = Form(40, description="L-BFGS function evaluations (1..2000)"),
    who: Principal = QueryKey,
) -> dict[str, Any]:
    state = request.app.state
    c_up = await read_upload(content, state.config.max_upload_bytes)
    s_up = await read_upload(style, state.config.max_upload_bytes)

    def decode() -> tuple[Any, Any]:
        return decode_rgb(c_up, state.config.max_pixels), decode_rgb(s_up, state.config.max_pixels)

    c_img, s_img = await offload(request, decode)
    runner = web_state(request).style()
    try:
        job = runner.start(c_img, s_img, alpha=alpha, beta=beta, size=size, iterations=iterations)
    except JobsBusy as exc:  # a bounded queue: 503 + Retry-After, as the encoder's
        raise ServiceBusy(exc.what, retry_after=5, hint=exc.hint) from exc
    return job.as_dict()


@router.get("/{job_id}", summary="A job's state and progress")
async def status(job_id: str, request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    return web_state(request).style().get(job_id).as_dict()


def _png(data: bytes | None, what: str) -> Response:
    if data is None:
        raise NotFoundError(f"no {what} yet", hint="poll the job until it has one")
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/preview",
    summary="The best image so far (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def preview(job_id: str, request: Request, who: Principal = QueryKey) -> Response:
    return _png(web_state(request).style().get(job_id).preview, "preview")


@router.get(
    "/{job_id}/result",
    summary="The result (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def result(job_id: str, request: Request, who: Principal = QueryKey) -> Response:
    return _png(web_state(request).style().get(job_id).result, "result")


@router.post("/{job_id}/cancel", summary="Stop a job (it keeps the latest image)")
async def cancel(job_id: str, request: Request, who: Principal = QueryKey) -> dict[str, Any]:
    return web_state(request).style().cancel(job_id).as_dict()
