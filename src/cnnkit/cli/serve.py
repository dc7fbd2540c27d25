"""``cnnkit serve``: run the HTTP service under uvicorn; ``cnnkit serve keys``: manage API keys."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.cli.face.common import detector_opt
from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.serve.config import ServeConfig

log = logging.getLogger(__name__)

_EPILOG = """\
Examples:
  cnnkit serve keys create --role admin           # prints a new key on its last line
  cnnkit serve                                    # http://127.0.0.1:8000, API docs at /docs
  cnnkit serve --port 9000 --db faces-serve.sqlite3
  cnnkit serve --detector cnn --precision auto       # turned faces; the CPU's fastest encoder
  cnnkit serve calibrate --fpir 0.001 --images lfw/  # the tau identify uses (1:N, per gallery)
  cnnkit serve --host 0.0.0.0 --workers 4 --db postgresql://cnnkit@db/cnnkit
  curl -H "X-API-Key: $KEY" -F file=@photo.jpg http://127.0.0.1:8000/api/v1/identify

The default database is serve.sqlite3 in the user data folder ($CNNKIT_SERVE_DB overrides it).
Binding to anything but 127.0.0.1 exposes the service: put it behind TLS.
"""

_KEYS_EPILOG = """\
Roles: query (verify, identify, detect, read), enroll (also add and remove persons and photos),
admin (also manage keys and read the audit log). A key belongs to one gallery (--gallery) and
sees only that gallery's persons. Only the key's hash is stored: copy it when it is printed.

Examples:
  KEY=$(cnnkit serve keys create --role enroll --gallery door | tail -n 1)
  cnnkit serve keys list
  cnnkit serve keys revoke 3
"""


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH_OR_URL",
        default=None,
        help="SQLite file or postgresql:// URL (default: serve.sqlite3 in the user data folder)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cnnkit serve`` (and ``serve keys ...``) to the ``cnnkit`` parser."""
    p = sub.add_parser(
        "serve",
        help="the face system as an HTTP API (keys, docs at /docs)",
        description="Run the HTTP API (FastAPI under uvicorn): persons and photos, verify, "
        "identify, detect, edges and model summaries, with API keys and roles.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free)")
    _add_db(p)
    p.add_argument("--workers", type=_positive, default=1, help="worker processes (default: 1)")
    p.add_argument(
        "--max-upload-mb", type=float, default=10.0, help="largest upload in MB (default: 10)"
    )
    p.add_argument(
        "--max-mpx",
        type=_megapixels,
        default=40.0,
        help="largest image in megapixels, refused (413) before decoding (default: 40; a 48 MP "
        "phone photo needs 50 and --max-upload-mb 25; at most Pillow's guard, 89)",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="request time-out in seconds (default: 30)"
    )
    detector_opt(p)
    _precision_opt(p)
    p.set_defaults(func=_run_serve)

    keys = p.add_subparsers(dest="serve_command", metavar="{keys,import,calibrate}")
    k = keys.add_parser(
        "keys",
        help="create, list and revoke API keys",
        epilog=_KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = k.add_subparsers(dest="keys_command", metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="make a key; it is printed once, alone on the last line",
        epilog=_KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("--role", required=True, choices=("admin", "enroll", "query"))
    create.add_argument("--gallery", default="default", help="the key's gallery (default: default)")
    create.add_argument("--label", default=None, help="a note to tell keys apart in `keys list`")
    _add_db(create)
    create.set_defaults(func=_keys_create)
    listing = actions.add_parser("list", help="every key (id, role, gallery; never the key)")
    _add_db(listing)
    listing.set_defaults(func=_keys_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int, metavar="ID", help="the id shown by `keys list`")
    _add_db(revoke)
    revoke.set_defaults(func=_keys_revoke)
    k.set_defaults(func=lambda args: (k.print_help(), 2)[1])
    _register_import(keys)
    _register_calibrate(keys)


def _precision_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8"),
        default="fp32",
        help="encoder arithmetic: fp32 (matches dlib), bf16 (CPUs with AVX512-BF16/AMX), int8 "
        "(x86 CPUs), or auto: chosen by what the CPU reports; GET /api/v1/info says which runs "
        "(default: fp32; docs/serve.md says why)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _megapixels(text: str) -> float:
    from cnnkit.io.image import MAX_IMAGE_PIXELS

    value = float(text)
    if not 0 < value <= MAX_IMAGE_PIXELS / 1e6:
        raise argparse.ArgumentTypeError(
            f"must be above 0 and at most {MAX_IMAGE_PIXELS / 1e6:.0f}, got {text}"
        )
    return value


def _storage(args: argparse.Namespace):
    from cnnkit.serve.storage import open_storage

    return open_storage(args.db)


def _keys_create(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        row, secret = storage.create_key(args.role, args.gallery, args.label)
    finally:
        storage.close()
    print(
        f"key {row.id}: role {row.role}, gallery {row.gallery!r} in {storage.describe()};"
        " shown once, only its hash is stored:",
        file=sys.stderr,
    )
    print(secret)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        rows = storage.list_keys()
    finally:
        storage.close()
    print(f"{'id':>4}  {'role':<6}  {'gallery':<16}  {'created':<25}  {'revoked':<25}  label")
    for r in rows:
        print(
            f"{r.id:>4}  {r.role:<6}  {r.gallery:<16}  {r.created_at:<25}  "
            f"{r.revoked_at or '-':<25}  {r.label or ''}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        row = storage.revoke_key(args.key_id)
    finally:
        storage.close()
    print(f"key {row.id} ({row.role}, gallery {row.gallery!r}) revoked at {row.revoked_at}")
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """Listen on (host, port) now, so port 0 becomes a real port before the URL is printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CnnkitError(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            hint="pick another --port (0: any free one)",
        ) from exc
    # listen() now, not when uvicorn starts serving: the URL is printed during start-up, and a
    # client that opened it at once was refused (seen in the wheel test under load); the
    # kernel queues its connection until uvicorn accepts.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from cnnkit.face.precision import resolve_precision
    from cnnkit.serve.config import CONFIG_ENV, ServeConfig
    from cnnkit.serve.sessions import new_token
    from cnnkit.serve.storage import open_storage

    try:  # a precision this CPU cannot run is a one-line error before uvicorn starts
        if args.precision != "auto":  # (auto always resolves; it says its choice at start-up)
            resolve_precision(args.precision, "cpu")
    except ValueError as exc:
        raise CnnkitError(str(exc), hint="use --precision auto or fp32") from None
    config = ServeConfig(
        db=args.db,
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        max_pixels=int(args.max_mpx * 1e6),
        request_timeout=args.timeout,
        detector=args.detector,
        precision=args.precision,
        session_token=new_token(),
    )
    open_storage(config.db).close()  # a bad --db is a one-line error before uvicorn starts
    _print_import_notice(args)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: the API is reachable from other machines", config.host)
    level = "warning" if args.quiet else "info"
    sock = _bind(config.host, config.port)
    config.port = sock.getsockname()[1]
    if config.workers == 1:
        from cnnkit.serve.app import create_app

        server = uvicorn.Server(
            uvicorn.Config(create_app(config), host=config.host, port=config.port, log_level=level)
        )
        server.run(sockets=[sock])
    else:
        sock.close()  # uvicorn binds it again and shares it with its worker processes
        config.announce_url = False  # each worker would print it: this process does, once
        os.environ[CONFIG_ENV] = config.to_env()
        _announce_when_ready(config)
        uvicorn.run(
            "cnnkit.serve.app:app_from_env",
            factory=True,
            host=config.host,
            port=config.port,
            workers=config.workers,
            log_level=level,
        )
    return 0


_IMPORT_EPILOG = """\
Copies every person of a `cnnkit face` database (descriptors, photo sha256s, source names) into
one gallery of the service's database, in one transaction; a running server sees them within a
second. Both must use the same encoder and descriptor pipeline. Photos already there (same
sha256) are skipped, so running it twice changes nothing. The calibrated taus come along when
the gallery has none.

Examples:
  cnnkit serve import                                  # the default faces.sqlite3 -> serve.sqlite3
  cnnkit serve import team.sqlite3 --gallery door --db postgresql://cnnkit@db/cnnkit
  cnnkit serve import more.sqlite3 --merge             # add photos to persons already there
"""


def _register_import(sub: argparse._SubParsersAction) -> None:
    """``cnnkit serve import``: the persons of a ``cnnkit face`` database into the service's."""
    p = sub.add_parser(
        "import",
        help="copy the persons of a `cnnkit face` database into the service's",
        description="Copy the persons enrolled with `cnnkit face enroll` into the service's "
        "database.",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "faces_db",
        nargs="?",
        default=None,
        metavar="FACES_DB",
        help="the face database (default: cnnkit face's, $CNNKIT_FACE_DB or faces.sqlite3 in "
        "the user data folder)",
    )
    p.add_argument("--gallery", default="default", help="target gallery (default: default)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add photos to persons the gallery already has (default: refuse them)",
    )
    _add_db(p)
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from cnnkit.serve.importer import import_face_db

    storage = _storage(args)
    try:
        report = import_face_db(storage, args.faces_db, gallery=args.gallery, merge=args.merge)
    finally:
        storage.close()
    print(report.summary())
    return 0


_CALIBRATE_EPILOG = """\
The same use cases as `cnnkit face calibrate`, with the service's encoder, storing the tau in
one gallery of the service's database (a running server uses it within a second; GET
/api/v1/info shows both taus).

--for identification (the default here) takes --images DIR with one subfolder of photos per
person: every person with 2+ photos is enrolled with the first and searched with the others,
the rest search as strangers; the tau stored is the one whose false positive identification
rate is --fpir, on --norm scores (tnorm: the T-norm, as `cnnkit face`). identify uses it; a
larger gallery needs a stricter tau, so the gallery size is stored too, and the server warns
(once, and in /info) when the gallery outgrows it. --for verification takes --pairs and
--images (LFW's pairs format) and stores the pair tau that verify and enroll use.

Examples:
  cnnkit serve calibrate --fpir 0.001 --images lfw/ --gallery door --db serve.sqlite3
  cnnkit serve calibrate --for verification --pairs pairs.txt --images lfw/
"""


def _register_calibrate(sub: argparse._SubParsersAction) -> None:
    """``cnnkit serve calibrate``: a gallery's identification (or pair) tau."""
    from cnnkit.cli.face.common import count, norm_opt

    p = sub.add_parser(
        "calibrate",
        help="choose a gallery's identification tau (or pair tau) and store it",
        description="Choose the tau of a gallery on labelled photos and store it in the "
        "service's database.",
        epilog=_CALIBRATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--for",
        dest="purpose",
        choices=("identification", "verification"),
        default="identification",
        help="which tau: 1:N on a person folder (default), or 1:1 on --pairs",
    )
    p.add_argument("--images", required=True, type=Path, metavar="DIR")
    p.add_argument("--pairs", type=Path, default=None, metavar="pairs.txt")
    p.add_argument("--fpir", type=float, default=0.001, help="the FPIR to hold (0.001)")
    p.add_argument(
        "--gallery-size", type=count(2), default=None, metavar="N", help="persons enrolled"
    )
    norm_opt(p)
    p.add_argument("--gallery", default="default", help="the gallery (default: default)")
    p.add_argument("--upsample", type=count(0), default=1, metavar="N", help="HOG upsampling")
    detector_opt(p)
    _precision_opt(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_db(p)
    p.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    import json

    from cnnkit.face import calibrate, calibrate_identification, load_encoder
    from cnnkit.serve.replica import GalleryStore, ReplicaIndex

    if args.purpose == "verification" and args.pairs is None:
        raise CnnkitError("--pairs is required", hint="pass --pairs pairs.txt, or drop --for")
    storage = _storage(args)
    try:
        store = GalleryStore(ReplicaIndex(storage), args.gallery)
        options = {
            "store": store,
            "encoder": lambda: load_encoder(None, precision=args.precision),
            "upsample": args.upsample,
            "detector": args.detector,
        }
        if args.purpose == "verification":
            cal = calibrate(args.pairs, args.images, **options)
            out: dict[str, Any] = {"tau": cal.tau, "accuracy_kfold": cal.accuracy_kfold}
            line = f"pair tau {cal.tau:.4f} (accuracy {cal.accuracy_kfold:.4f}, k-fold)"
        else:
            ident = calibrate_identification(
                args.images,
                fpir=args.fpir,
                gallery_size=args.gallery_size,
                norm=args.norm,
                **options,
            )
            out = {
                "tau_identification": ident.tau,
                "fpir": ident.fpir,
                "fnir": ident.fnir,
                "gallery_size": ident.gallery_size,
                "score": ident.norm,
                **ident.evaluation.as_json(),
            }
            line = (
                f"identification tau {ident.tau:.4f} ({ident.norm} scores, FPIR {ident.fpir:g}, "
                f"FNIR {ident.fnir:.4f}, for {ident.gallery_size} persons)"
            )
        where = f"gallery {args.gallery!r} of {storage.describe()}"
    finally:
        storage.close()
    if args.json:
        print(json.dumps({**out, "gallery": args.gallery, "db": storage.describe()}))
    else:
        print(f"{line} stored in {where}")
    return 0


def _print_import_notice(args: argparse.Namespace) -> None:
    """At start-up, once (not per worker): how to import the persons of ``cnnkit face``."""
    if args.quiet:
        return
    from cnnkit.serve.importer import import_notice

    storage = _storage(args)
    try:
        notice = import_notice(storage, args.db)
    finally:
        storage.close()
    if notice:
        print(notice, file=sys.stderr, flush=True)


def _announce_when_ready(config: ServeConfig) -> None:
    """Print the sign-in URL once, when the first worker answers ``/readyz`` (a daemon thread
    of the process that supervises the ``--workers N`` processes)."""
    import threading
    import time
    import urllib.request

    from cnnkit.serve.app import base_url, sign_in_url

    def wait() -> None:
        while True:
            try:
                with urllib.request.urlopen(f"{base_url(config)}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:  # not listening yet, or 503 while the models load
                pass
            time.sleep(0.2)
        print(f"cnnkit serve: open {sign_in_url(config)}", file=sys.stderr, flush=True)

    threading.Thread(target=wait, name="cnnkit-announce", daemon=True).start()
