"""Uploads: a body-size limit before parsing, and photos decoded in memory (never on disk).

Faces are biometric data: an uploaded photo is read into memory, hashed (sha256), decoded and
dropped; only descriptors and hashes are stored. Starlette spools multipart files above
``MultiPartParser.spool_max_size`` to a temporary file, so :func:`install` raises that size
above the upload limit, and the limit itself is enforced on the raw body (413) before a
multipart parser sees it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnnkit.io.image import decode_image
from cnnkit.serve.problems import PayloadTooLarge, problem

#: Room for the multipart envelope and small fields around the file itself.
ENVELOPE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Upload:
    """An uploaded file held in memory."""

    data: bytes
    filename: str | None
    sha256: str


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes (Content-Length or streamed) with 413."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int):
        self.app = app
        self.limit = limit  # the body: the upload plus its multipart envelope
        self.upload_limit = upload_limit

    def _too_large(self) -> PayloadTooLarge:
        mb = self.upload_limit / 1e6
        return PayloadTooLarge(
            f"request body over the upload limit of {mb:g} MB",
            hint="send a smaller photo (resize or recompress it)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise self._too_large()
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = self._too_large()
        response = problem(413, "too-large", exc.message, instance=scope.get("path"))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def install(app: FastAPI, max_upload_bytes: int) -> None:
    limit = max_upload_bytes + ENVELOPE_BYTES
    # Keep every accepted upload in memory (Starlette's default spools files over 1 MB to disk).
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, limit + 1)
    app.add_middleware(BodyLimit, limit=limit, upload_limit=max_upload_bytes)


async def read_upload(file: UploadFile, max_bytes: int) -> Upload:
    """The whole upload in memory, with its sha256; 413 over ``max_bytes``."""
    data = await file.read(max_bytes + 1)
    await file.close()
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{file.filename or 'upload'}: over the upload limit of {max_bytes / 1e6:g} MB",
            hint="send a smaller photo (resize or recompress it)",
        )
    return Upload(data, file.filename, hashlib.sha256(data).hexdigest())


def decode_rgb(upload: Upload, max_pixels: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an upload (EXIF-rotated); ImageReadError maps to 413/415/422."""
    image = decode_image(upload.data, name=upload.filename or "upload", max_pixels=max_pixels)
    return np.asarray(image, dtype=np.uint8)
