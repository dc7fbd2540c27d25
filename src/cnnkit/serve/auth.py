"""API keys and roles, as a FastAPI dependency: ``Depends(require("enroll"))``.

A key (``X-API-Key`` header, or the browser's session cookie: see ``sessions.py``) has one
role and belongs to one gallery. Roles nest:

- ``query``: verify, identify, detect, and read persons, photos, info, edges, model summaries;
- ``enroll``: also create, rename and delete persons, add and delete photos;
- ``admin``: also manage the gallery's keys and read its audit log.

No key, an unknown or a revoked key -> 401; a role that may not -> 403. Only the key's sha256 is
stored (``storage.key_for_secret``); the request's :class:`Principal` is kept on
``request.state.principal`` for the handlers and the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from cnnkit.serve.problems import ApiError

RANK = {"query": 0, "enroll": 1, "admin": 2}
API_KEY_HEADER = "X-API-Key"

_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="an API key made with `cnnkit serve keys create --role ROLE`",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (for the audit log), role and gallery."""

    key_id: int
    role: str
    gallery: str
    via_cookie: bool = False


def authenticate(request: Request, api_key: str | None) -> Principal:
    """The caller's principal, from the ``X-API-Key`` header; 401 when there is no valid key."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal: Principal | None = None
    if api_key:
        key = request.app.state.storage.key_for_secret(api_key.strip())
        if key is not None:
            principal = Principal(key.id, key.role, key.gallery)
    if principal is None and not api_key:
        session = getattr(request.app.state, "sessions", None)
        principal = session.principal(request) if session is not None else None
    if principal is None:
        what = "invalid or revoked API key" if api_key else "no API key"
        raise ApiError(
            401,
            "unauthorized",
            what,
            hint=f"send the {API_KEY_HEADER} header; make a key with "
            "`cnnkit serve keys create --role query`",
        )
    request.state.principal = principal
    return principal


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def require(role: str) -> Callable[..., Principal]:
    """A dependency that admits keys of ``role`` or a higher one (query < enroll < admin)."""
    if role not in RANK:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(RANK)}")

    def dependency(request: Request, api_key: str | None = Security(_api_key)) -> Principal:
        principal = authenticate(request, api_key)
        if RANK[principal.role] < RANK[role]:
            raise ApiError(
                403,
                "forbidden",
                f"a {principal.role} key may not do this; it needs {_article(role)} {role} key",
                hint=f"make one with `cnnkit serve keys create --role {role}`",
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


#: Shorthands for handler parameters: ``principal: Principal = Query``.
QueryKey = Depends(require("query"))
EnrollKey = Depends(require("enroll"))
AdminKey = Depends(require("admin"))
