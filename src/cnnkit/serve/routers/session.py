"""Browser sign-in: exchange the printed one-time token (or a typed API key) for a cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload
from cnnkit.serve.problems import ApiError
from cnnkit.serve.sessions import COOKIE, csrf_token, set_cookie

router = APIRouter(prefix="/session", tags=["session"])


class SignIn(BaseModel):
    token: str | None = Field(None, description="the one-time token of the printed URL")
    key: str | None = Field(None, description="an API key typed into the sign-in box")


class SessionOut(BaseModel):
    role: str
    gallery: str
    key_id: int
    csrf: str | None = Field(
        None, description="send as X-CSRF-Token on cookie-authenticated writes"
    )


@router.post("", response_model=SessionOut, summary="Sign in: set the session cookie")
async def sign_in(body: SignIn, request: Request, response: Response) -> SessionOut:
    state = request.app.state
    if body.token:
        key, secret = await offload(request, state.sessions.redeem, state.storage, body.token)
    elif body.key:
        secret = body.key.strip()
        found = await offload(request, state.storage.key_for_secret, secret)
        if found is None:
            raise ApiError(
                401,
                "unauthorized",
                "invalid or revoked API key",
                hint="make one with `cnnkit serve keys create --role admin`",
            )
        key = found
    else:
        raise ApiError(
            422,
            "invalid-input",
            "send a token or a key",
            hint='POST {"token": "..."} or {"key": "..."}',
        )
    set_cookie(response, secret, secure=request.url.scheme == "https")
    return SessionOut(role=key.role, gallery=key.gallery, key_id=key.id, csrf=csrf_token(secret))


@router.get("", response_model=SessionOut, summary="Who am I, and the CSRF token")
async def whoami(request: Request, who: Principal = QueryKey) -> SessionOut:
    secret = request.cookies.get(COOKIE) if who.via_cookie else None
    return SessionOut(
        role=who.role,
        gallery=who.gallery,
        key_id=who.key_id,
        csrf=csrf_token(secret) if secret else None,
    )


@router.delete("", status_code=204, summary="Sign out: clear the cookie")
async def sign_out(request: Request, who: Principal = QueryKey) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response
