"""The browser app: its static files (``web/``, shipped in the package) served at ``/``, and the
state its routers share (the digits model, trained on first use; the style job runner).

Everything the page needs is inside the package: no CDN, no build step. The routers behind the
tabs are ``routers/conv.py``, ``learn.py``, ``digits.py``, ``style_jobs.py`` and ``samples.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: The app's files: index.html, css/, js/ (one ES module per tab, api.js, ui.js).
WEB_DIR = Path(__file__).parent / "web"


@dataclass
class WebState:
    """Lazily built helpers of the web app's routers, one per app (on ``app.state.web``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    digits_model: Any = None
    style_jobs: Any = None

    def digits(self) -> tuple[Any, bool]:
        """The LeNet-5 digits model and whether it was trained just now (first use)."""
        from cnnkit.train.digits import load_digits_model

        with self.lock:
            if self.digits_model is not None:
                return self.digits_model, False
            trained: list[int] = []
            self.digits_model = load_digits_model(on_epoch=lambda done, total: trained.append(done))
            return self.digits_model, bool(trained)

    def style(self) -> Any:
        from cnnkit.style.jobs import StyleJobRunner

        with self.lock:
            if self.style_jobs is None:
                self.style_jobs = StyleJobRunner()
            return self.style_jobs


def web_state(request: Request) -> WebState:
    state = request.app.state
    if getattr(state, "web", None) is None:
        state.web = WebState()
    return state.web


def install(app: FastAPI) -> None:
    """Serve the app: ``/`` is ``index.html``, ``/css`` and ``/js`` its files. Nothing is mounted
    at ``/`` itself, so it shadows no route (the API, /docs, or one added later)."""
    app.state.web = WebState()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    for folder in ("css", "js"):
        app.mount(f"/{folder}", StaticFiles(directory=WEB_DIR / folder), name=f"web-{folder}")
