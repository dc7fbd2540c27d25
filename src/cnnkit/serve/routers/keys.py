"""Admin keys manage the keys of their gallery and read its audit log."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Query, Request

from cnnkit.serve.auth import AdminKey, Principal
from cnnkit.serve.deps import offload
from cnnkit.serve.problems import ApiError
from cnnkit.serve.schemas import AuditOut, KeyCreated, KeyIn, KeyOut

router = APIRouter(tags=["keys"])


@router.get("/keys", response_model=list[KeyOut], summary="Keys of this gallery")
async def list_keys(request: Request, who: Principal = AdminKey) -> list[KeyOut]:
    rows = await offload(request, request.app.state.storage.list_keys)
    return [KeyOut(**dataclasses.asdict(k)) for k in rows if k.gallery == who.gallery]


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Make a key")
async def create_key(body: KeyIn, request: Request, who: Principal = AdminKey) -> KeyCreated:
    storage = request.app.state.storage
    row, secret = await offload(request, storage.create_key, body.role, who.gallery, body.label)
    return KeyCreated(**dataclasses.asdict(row), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyOut, summary="Revoke a key")
async def revoke_key(key_id: int, request: Request, who: Principal = AdminKey) -> KeyOut:
    storage = request.app.state.storage
    keys = {k.id: k for k in await offload(request, storage.list_keys)}
    if key_id not in keys or keys[key_id].gallery != who.gallery:
        raise ApiError(404, "not-found", f"no key with id {key_id} in this gallery")
    return KeyOut(**dataclasses.asdict(await offload(request, storage.revoke_key, key_id)))


@router.get("/audit", response_model=list[AuditOut], summary="Who did what, newest first")
async def audit(
    request: Request, limit: int = Query(100, ge=1, le=1000), who: Principal = AdminKey
) -> list[AuditOut]:
    rows = await offload(request, request.app.state.storage.audit_log, who.gallery, limit=limit)
    return [
        AuditOut(**{k: v for k, v in dataclasses.asdict(r).items() if k != "gallery"}) for r in rows
    ]
