"""The service's settings: one typed dataclass, filled by ``cnnkit serve``'s flags."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from cnnkit.face.detectors import DEFAULT_DETECTOR

#: Environment variable that carries the config to uvicorn's worker processes (--workers N).
CONFIG_ENV = "CNNKIT_SERVE_CONFIG"


@dataclass
class ServeConfig:
    """How ``cnnkit serve`` runs."""

    db: str | None = None  # SQLite path or postgresql:// URL; None: serve.sqlite3 in user data
    host: str = "127.0.0.1"  # loopback by default: expose on purpose, behind TLS
    port: int = 8000
    workers: int = 1  # uvicorn worker processes (each loads the models and its own index)
    gallery: str = "default"  # the gallery of the browser session's admin key
    max_upload_bytes: int = 10_000_000  # larger uploads -> 413
    max_pixels: int = 40_000_000  # larger images (decompression bombs) -> 413
    request_timeout: float = 30.0  # seconds of inference before 503 + Retry-After
    threads: int = 4  # inference threads (detection, alignment, search) off the event loop
    max_pending: int = 64  # requests in or waiting for those threads; more -> 503 + Retry-After
    batch_size: int = 32  # micro-batch: at most B chips per encoder call ...
    batch_wait_ms: float = 5.0  # ... or what arrived within this many ms of the first
    queue_size: int = 256  # chips waiting for the encoder; more -> 503 + Retry-After
    sync_interval: float = 0.2  # seconds between two reads of the change feed
    detector: str = DEFAULT_DETECTOR  # hog, cnn, hog+cnn or auto (cnnkit.face.detectors)
    precision: str = "fp32"  # encoder arithmetic: auto, fp32, bf16 or int8 (cnnkit.face.precision)
    load_models: bool = True  # load the face models at start-up (readiness waits for it)
    session_token: str | None = None  # one-time token of the printed URL (browser sign-in)
    announce_url: bool = True  # print that URL when ready (--workers N: the parent, once)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})
