"""Verify (1:1), identify (1:K) and detect, on an uploaded photo."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from cnnkit.serve import face_ops
from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import UPSAMPLE, gallery_store, on_photo
from cnnkit.serve.uploads import Upload

router = APIRouter(tags=["recognition"])

_TOLERANCE = Query(
    None, gt=0, description="distance threshold; default the gallery's tau, else 0.6"
)


@router.post(
    "/verify",
    summary="Is the face in the photo this person? (1:1)",
    description="Returns `match`, the `distance` to the person's nearest enrolled descriptor and "
    "the threshold `tau` (match when distance <= tau). With several faces the largest is used; "
    "`faces` says how many there were.",
)
async def verify(
    request: Request,
    file: UploadFile = File(..., description="a photo"),
    person: str = Form(..., description="the claimed person's name"),
    tolerance: float | None = _TOLERANCE,
    upsample: int = UPSAMPLE,
    who: Principal = QueryKey,
) -> dict[str, Any]:
    state = request.app.state

    def work(image: np.ndarray, _: Upload) -> dict[str, Any]:
        store = gallery_store(request, who)
        result = face_ops.verify(
            store,
            image,
            person,
            tolerance=tolerance,
            upsample=upsample,
            encoder=state.encoder,
            detector=state.config.detector,
        )
        found = state.storage.find_person(who.gallery, person)
        state.storage.record(
            who.gallery, "verify", actor=who.key_id, person_id=found.id if found else None
        )
        return result

    return await on_photo(request, file, work)


@router.post(
    "/identify",
    summary="Who is in the photo? (1:K)",
    description='Every face: its `box`, the `name` of the nearest person or `"unknown"` when '
    "even the nearest is farther than tau, the `distance`, and the next-best `candidates`.",
)
async def identify(
    request: Request,
    file: UploadFile = File(..., description="a photo"),
    tolerance: float | None = _TOLERANCE,
    k: int = Query(3, ge=1, le=20, description="candidates per face (the best included)"),
    upsample: int = UPSAMPLE,
    who: Principal = QueryKey,
) -> dict[str, Any]:
    encoder = request.app.state.encoder

    def work(image: np.ndarray, _: Upload) -> dict[str, Any]:
        store = gallery_store(request, who)
        return face_ops.identify(
            store,
            image,
            tolerance=tolerance,
            k=k,
            upsample=upsample,
            encoder=encoder,
            detector=request.app.state.config.detector,
        )

    return await on_photo(request, file, work)


@router.post("/detect", summary="Face boxes in the photo")
async def detect(
    request: Request,
    file: UploadFile = File(..., description="a photo"),
    upsample: int = UPSAMPLE,
    who: Principal = QueryKey,
) -> dict[str, Any]:
    detector = request.app.state.config.detector
    return await on_photo(
        request,
        file,
        lambda image, _: face_ops.detect(image, upsample=upsample, detector=detector),
    )
