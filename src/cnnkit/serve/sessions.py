"""Browser sessions: a one-time sign-in token, an HttpOnly cookie, and a CSRF token for writes.

``cnnkit serve`` prints ``http://127.0.0.1:PORT/?token=T`` (as Jupyter does). Opening it (or
``POST /api/v1/session`` with ``{"token": T}``) makes an admin key of the default gallery,
labelled ``session:<hash of T>`` (so the token works once, across every worker process), and sets
it as the ``cnnkit_session`` cookie: HttpOnly (page scripts cannot read it), SameSite=Strict
(other sites cannot send it). ``POST /api/v1/session`` with ``{"key": K}`` does the same for an
API key typed into the page's sign-in box.

A request authenticated by the cookie that changes something (POST, PUT, PATCH, DELETE) must
also carry ``X-CSRF-Token``: an HMAC of the cookie's key, returned by ``GET``/``POST
/api/v1/session`` to the page, which no other site can read. Every worker computes it alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from cnnkit.serve.auth import Principal
from cnnkit.serve.problems import ApiError
from cnnkit.serve.storage.base import KeyRow

COOKIE = "cnnkit_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """A one-time sign-in token for the printed URL."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with a session cookie holding ``secret``."""
    return hmac.new(secret.encode(), b"cnnkit-csrf", hashlib.sha256).hexdigest()


def token_label(token: str) -> str:
    return "session:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def set_cookie(response: Response, secret: str, secure: bool = False) -> None:
    response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", secure=secure, path="/")


class Sessions:
    """Sign-in tokens and cookie authentication for one app (``app.state.sessions``)."""

    def __init__(self, token: str | None, gallery: str):
        self.token = token
        self.gallery = gallery

    def redeem(self, storage, token: str) -> tuple[KeyRow, str]:
        """Exchange the one-time token for a new admin key of the default gallery."""
        if not self.token or not hmac.compare_digest(token.encode(), self.token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "invalid sign-in token",
                hint="open the URL that `cnnkit serve` printed, or sign in with a key",
            )
        label = token_label(token)
        if any(k.label == label for k in storage.list_keys()):
            raise ApiError(
                401,
                "unauthorized",
                "this sign-in token was already used",
                hint="restart `cnnkit serve` for a new one, or sign in with a key",
            )
        return storage.create_key("admin", self.gallery, label)

    def principal(self, request: Request) -> Principal | None:
        """The cookie's principal; 403 for a write without the matching CSRF token."""
        secret = request.cookies.get(COOKIE)
        if not secret:
            return None
        key = request.app.state.storage.key_for_secret(secret)
        if key is None:
            return None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf_token(secret).encode()):
                raise ApiError(
                    403,
                    "csrf",
                    f"missing or wrong {CSRF_HEADER} header on a cookie-authenticated write",
                    hint="send the csrf value from GET /api/v1/session",
                )
        return Principal(key.id, key.role, key.gallery, via_cookie=True)
