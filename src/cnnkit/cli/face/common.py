"""Options and output helpers shared by the ``cnnkit face`` subcommand modules."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cnnkit.errors import shorten
from cnnkit.face.detectors import DEFAULT_DETECTOR, DETECTORS


def count(minimum: int):
    """argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {shorten(text)}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def tau_value(text: str) -> float:
    """argparse type: a finite distance threshold > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {shorten(text)}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {shorten(text)}")
    return value


# -- options shared by the subcommands ------------------------------------------------------
def db_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        type=Path,
        default=None,
        help="person database file (default: faces.sqlite3 in the user data folder, "
        "or $CNNKIT_FACE_DB)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait when another process is writing the database (default: 10)",
    )


def model_opts(p: argparse.ArgumentParser, tolerance: bool = True) -> None:
    p.add_argument(
        "--model",
        metavar="PATH",
        default=None,
        help="encoder weights: a checkpoint from `cnnkit face train`, a .safetensors state "
        "dict, or dlib's .dat (default: dlib's face ResNet from face_recognition_models)",
    )
    p.add_argument(
        "--device", default="cpu", help="torch device for the encoder: cpu, cuda (default: cpu)"
    )
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8"),
        default="fp32",
        help="encoder arithmetic: fp32 (matches dlib), bf16 (CPUs with AVX512-BF16/AMX, GPUs), "
        "int8 (x86 CPUs), or auto: chosen by what the device reports (default: fp32)",
    )
    p.add_argument(
        "--upsample",
        type=count(0),
        default=1,
        metavar="N",
        help="double the image N times before detection: 1 finds faces down to about "
        "40 px, 0 only from 80 px but 4x faster (default: 1); a photo over 3 Mpx is searched "
        "scaled down to 3 Mpx, so 2 finds faces under ~60 px in a 12 Mpx group photo",
    )
    detector_opt(p)
    if tolerance:
        p.add_argument(
            "--tolerance",
            type=tau_value,
            default=None,
            metavar="T",
            help="distance threshold tau: same person when d <= T; lower is stricter "
            "(default: the database's calibrated tau, else 0.6)",
        )


def detector_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--detector",
        choices=DETECTORS,
        default=DEFAULT_DETECTOR,
        help="face detector: hog (dlib's HOG, fast, frontal faces), cnn (dlib's MMOD CNN: "
        "turned, small and poorly lit faces, ~5-10x slower on a CPU), hog+cnn (cnn only where "
        "hog finds nothing), or auto: cnn on a GPU or an image of at most 1 Mpixel after "
        f"upsampling, else hog; it says which it used (default: {DEFAULT_DETECTOR})",
    )


def parser(sub: argparse._SubParsersAction, name: str, help: str, epilog: str = ""):
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def pipeline_opt(p: argparse.ArgumentParser) -> None:
    from cnnkit.face.descriptors import DEFAULT_PIPELINE, PIPELINES

    p.add_argument(
        "--pipeline",
        choices=list(PIPELINES),
        default=None,
        help="how descriptors are made: landmarks (dlib's integer or sub-pixel 5 points, "
        "+68: and a chip from the 68-point landmarks), flip averaging, +pad: more chip "
        "paddings, +facenet: a second network's descriptor beside dlib's (256 numbers); the "
        "most accurate is the default, subpixel+flip+68 is 2x cheaper and needs no FaceNet "
        f"weights (default: the database's, else {DEFAULT_PIPELINE})",
    )


def norm_opt(p: argparse.ArgumentParser) -> None:
    from cnnkit.face.openset import DEFAULT_NORM

    p.add_argument(
        "--norm",
        choices=("tnorm", "snorm", "none"),
        default=DEFAULT_NORM,
        help="1:N score: snorm (default), the distance divided by sqrt(the mean distance to "
        "the 5 next nearest persons x the person's mean distance to their 5 nearest enrolled "
        "persons), the best-scored of the 6 nearest named (S-norm); tnorm, the distance to the "
        "nearest person divided by the mean distance to the 5 next nearest (per-search "
        "T-norm); or none (the distance)",
    )


def pairs_opts(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--pairs", required=required, type=Path, metavar="pairs.txt")
    p.add_argument("--images", required=True, type=Path, metavar="DIR")
    p.add_argument(
        "--flip",
        action="store_true",
        help="average each descriptor with its mirror image's (already in the default pipeline)",
    )
    pipeline_opt(p)


def db_exists(db_path: Path | None) -> bool:
    from cnnkit.face import default_db_path

    return Path(db_path or default_db_path()).exists()


def gallery(args: argparse.Namespace, create: bool = False, readonly: bool = False):
    """The person database of ``--db``; ``readonly`` for commands that only read."""
    from cnnkit.face import Gallery

    return Gallery(args.db, create=create, timeout=args.timeout, readonly=readonly)


def encoder_loader(args: argparse.Namespace):
    """A loader of ``--model`` on ``--device`` in ``--precision``: the use cases call it once
    the inputs are checked, so bad input fails before the model loads."""
    from cnnkit.face import load_encoder

    precision = getattr(args, "precision", "fp32")
    return lambda: load_encoder(args.model, device=args.device, precision=precision)


def fmt(d: float) -> str:
    return f"{d:.4f}"


def check_inputs(paths: list[Path]) -> list[Path]:
    from cnnkit.errors import ImageReadError
    from cnnkit.io import list_images

    for p in paths:
        if not p.exists():
            raise ImageReadError("no such file or folder", path=p)
    files = list_images(paths)
    if not files:
        raise ImageReadError("no image files found", path=paths[0])
    return files


def warn_unreadable(message: str) -> None:
    print(f"warning: {message}; skipped", file=sys.stderr)


def no_face(path: Path) -> None:
    print(f"{path}: no face found", file=sys.stderr)


def failed_summary(failed: int, total: int) -> int:
    """Exit code after a batch: 2 (with one summary line) when some file could not be read."""
    if not failed:
        return 0
    print(f"error: {failed} of {total} file(s) could not be read", file=sys.stderr)
    return 2
