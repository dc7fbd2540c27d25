"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns is ``{"type", "title", "status", "detail", "instance"}``: ``type`` is
a stable URN per kind of problem (clients switch on it), ``detail`` the same one-line words as
the CLI's ``error: ...`` line (what is wrong, and in parentheses what to do).

=====================================  ======  ===============================================
exception                              status  type (``urn:cnnkit:problem:...``)
=====================================  ======  ===============================================
NotFoundError, unknown route           404     not-found
method not allowed                     405     method-not-allowed
Conflict (name taken)                  409     conflict
ModelMismatch (gallery of another      409     model-mismatch
encoder)
PayloadTooLarge, pixel bomb            413     too-large
not an image                           415     unsupported-media-type
ImageReadError (truncated), ShapeError 422     unreadable-image / invalid-input
NoFaceError, SeveralFacesError         422     no-face / several-faces
already enrolled (same file, person)   409     already-enrolled
request validation, other CnnkitError  422     invalid-input
no or bad API key                      401     unauthorized
role may not                           403     forbidden
ServiceBusy (queue full), time-out,    503     busy / timeout / database-unavailable
DatabaseError                                  (with ``Retry-After``)
anything else                          500     internal
=====================================  ======  ===============================================
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cnnkit.errors import (
    CnnkitError,
    DatabaseError,
    DependencyError,
    ImageReadError,
    NotFoundError,
    ShapeError,
)
from cnnkit.face.recognize import NoFaceError, SeveralFacesError
from cnnkit.serve.storage.base import Conflict, ModelMismatch

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class ServiceBusy(CnnkitError):
    """The encoder's queue is full: try again in ``retry_after`` seconds (503)."""

    def __init__(self, what: str, *, retry_after: int = 1, hint: str | None = None):
        super().__init__(what, hint=hint or f"retry in {retry_after} s")
        self.retry_after = retry_after


class RequestTimeout(ServiceBusy):
    """Inference took longer than the request time-out (503)."""


class PayloadTooLarge(CnnkitError):
    """A request body over the upload limit (413)."""


class ApiError(CnnkitError):
    """An error with an explicit status and type, raised by the routers and auth."""

    def __init__(self, status: int, kind: str, what: str, *, hint: str | None = None):
        super().__init__(what, hint=hint)
        self.status = status
        self.kind = kind


def problem(
    status: int,
    kind: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """One RFC 9457 response."""
    body: dict[str, Any] = {
        "type": f"urn:cnnkit:problem:{kind}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def classify(exc: CnnkitError) -> tuple[int, str, dict[str, str]]:
    """(status, type slug, extra headers) for a library or service error."""
    if isinstance(exc, ApiError):
        headers = {"WWW-Authenticate": "APIKey"} if exc.status == 401 else {}
        return exc.status, exc.kind, headers
    if isinstance(exc, RequestTimeout):
        return 503, "timeout", {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, ServiceBusy):
        return 503, "busy", {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, PayloadTooLarge):
        return 413, "too-large", {}
    if isinstance(exc, NotFoundError):
        return 404, "not-found", {}
    if isinstance(exc, ModelMismatch):
        return 409, "model-mismatch", {}
    if isinstance(exc, Conflict):
        return 409, "conflict", {}
    if isinstance(exc, ImageReadError):
        cause = exc.__cause__
        if isinstance(cause, Image.DecompressionBombError | Image.DecompressionBombWarning):
            return 413, "too-large", {}
        if isinstance(cause, UnidentifiedImageError):
            return 415, "unsupported-media-type", {}
        return 422, "unreadable-image", {}
    if isinstance(exc, DatabaseError):
        return 503, "database-unavailable", {"Retry-After": "1"}
    if isinstance(exc, DependencyError):
        return 501, "not-available", {}
    if isinstance(exc, NoFaceError):
        return 422, "no-face", {}
    if isinstance(exc, SeveralFacesError):
        return 422, "several-faces", {}
    if isinstance(exc, ShapeError):
        return 422, "invalid-input", {}
    return 422, "invalid-input", {}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    @app.exception_handler(CnnkitError)
    async def _cnnkit(request: Request, exc: CnnkitError) -> JSONResponse:
        status, kind, headers = classify(exc)
        return problem(status, kind, exc.message, instance=request.url.path, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        detail = f"{where}: {first.get('msg', 'invalid')}".replace("\n", " ")
        if first.get("type") == "missing":
            detail += f" (send the {where.split('.')[-1]!r} field)"
        return problem(422, "invalid-input", detail, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, CnnkitError):  # e.g. the body limit hit while parsing
            return await _cnnkit(request, exc.__cause__)
        kinds = {404: "not-found", 405: "method-not-allowed"}
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return problem(
            exc.status_code,
            kinds.get(exc.status_code, "http-error"),
            detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal",
            f"internal error ({type(exc).__name__}) (see the server log)",
            instance=request.url.path,
        )
