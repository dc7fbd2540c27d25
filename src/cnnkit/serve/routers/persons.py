"""Persons of the caller's gallery, and their photos (one-shot enrollment by upload)."""

from __future__ import annotations

import dataclasses

import numpy as np
from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from cnnkit.serve import face_ops
from cnnkit.serve.auth import EnrollKey, Principal, QueryKey
from cnnkit.serve.deps import UPSAMPLE, gallery_store, offload, on_photo
from cnnkit.serve.schemas import PersonIn, PersonOut, PersonPage, PhotoAdded, PhotoOut
from cnnkit.serve.uploads import Upload

router = APIRouter(prefix="/persons", tags=["persons"])


def _person(row) -> PersonOut:
    return PersonOut(**dataclasses.asdict(row))


@router.post("", status_code=201, response_model=PersonOut, summary="Create a person")
async def create_person(body: PersonIn, request: Request, who: Principal = EnrollKey) -> PersonOut:
    storage = request.app.state.storage
    row = await offload(request, storage.create_person, who.gallery, body.name, actor=who.key_id)
    return _person(row)


@router.get("", response_model=PersonPage, summary="List persons (paginated, by name)")
async def list_persons(
    request: Request,
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=1000),
    who: Principal = QueryKey,
) -> PersonPage:
    storage = request.app.state.storage
    rows, total = await offload(
        request, storage.list_persons, who.gallery, offset=offset, limit=limit
    )
    following = offset + len(rows)
    return PersonPage(
        items=[_person(r) for r in rows],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=following if following < total else None,
    )


@router.get("/{person_id}", response_model=PersonOut, summary="Get a person")
async def get_person(person_id: int, request: Request, who: Principal = QueryKey) -> PersonOut:
    row = await offload(request, request.app.state.storage.get_person, who.gallery, person_id)
    return _person(row)


@router.patch("/{person_id}", response_model=PersonOut, summary="Rename a person")
async def rename_person(
    person_id: int, body: PersonIn, request: Request, who: Principal = EnrollKey
) -> PersonOut:
    storage = request.app.state.storage
    row = await offload(
        request, storage.rename_person, who.gallery, person_id, body.name, actor=who.key_id
    )
    return _person(row)


@router.delete("/{person_id}", status_code=204, summary="Delete a person and every descriptor")
async def delete_person(person_id: int, request: Request, who: Principal = EnrollKey) -> Response:
    storage = request.app.state.storage
    await offload(request, storage.delete_person, who.gallery, person_id, actor=who.key_id)
    request.app.state.replica.sync(force=True)
    return Response(status_code=204)


@router.post(
    "/{person_id}/photos",
    status_code=201,
    response_model=PhotoAdded,
    summary="Add a photo (one-shot enrollment)",
    description="The photo must show one face; with `largest=true` the largest of several is "
    "enrolled. Only the descriptor and the file's sha256 are stored, never the image.",
)
async def add_photo(
    person_id: int,
    request: Request,
    file: UploadFile = File(..., description="a photo (JPEG, PNG, ...)"),
    largest: bool = Query(False, description="enroll the largest face when there are several"),
    upsample: int = UPSAMPLE,
    who: Principal = EnrollKey,
) -> PhotoAdded:
    state = request.app.state

    def work(image: np.ndarray, upload: Upload) -> PhotoAdded:
        person = state.storage.get_person(who.gallery, person_id)
        result = face_ops.enroll_photo(
            gallery_store(request, who),
            person.name,
            image,
            sha256=upload.sha256,
            source=upload.filename,
            largest=largest,
            upsample=upsample,
            encoder=state.encoder,
            detector=state.config.detector,
        )
        return PhotoAdded(
            person=_person(state.storage.get_person(who.gallery, person_id)), **result
        )

    return await on_photo(request, file, work)


@router.get("/{person_id}/photos", response_model=list[PhotoOut], summary="List a person's photos")
async def list_photos(
    person_id: int, request: Request, who: Principal = QueryKey
) -> list[PhotoOut]:
    rows = await offload(request, request.app.state.storage.list_photos, who.gallery, person_id)
    return [PhotoOut(**dataclasses.asdict(r)) for r in rows]


@router.delete("/{person_id}/photos/{photo_id}", status_code=204, summary="Delete one photo")
async def delete_photo(
    person_id: int, photo_id: int, request: Request, who: Principal = EnrollKey
) -> Response:
    storage = request.app.state.storage
    await offload(request, storage.delete_photo, who.gallery, person_id, photo_id, actor=who.key_id)
    request.app.state.replica.sync(force=True)
    return Response(status_code=204)
