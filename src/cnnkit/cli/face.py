"""``cnnkit face ...``: enroll, verify, identify, manage the person database, calibrate, evaluate,
and train the encoder with the triplet loss."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_EPILOG = """\
The person database is an SQLite file (--db, default: faces.sqlite3 in the user data folder,
or $CNNKIT_FACE_DB). It remembers which encoder made its descriptors and refuses another one.
Two photos show the same person when the distance between their 128-d descriptors is at most
the tolerance tau: --tolerance, else the tau stored by `calibrate`, else 0.6 (dlib's).

Examples:
  cnnkit face enroll Ada ada1.jpg ada2.jpg        # one photo is enough; more help
  cnnkit face verify door.jpg --as Ada            # 'match 0.31' (exit 0) or 'no-match 0.74' (1)
  cnnkit face identify party/ > who.csv           # every face of every image
  cnnkit face list
  cnnkit face calibrate --pairs pairs.txt --images lfw/   # choose tau, store it
  cnnkit face evaluate --pairs pairs.txt --images lfw/ --roc roc.png
  cnnkit face train --data people/ --out model.pt --epochs 5
  cnnkit face verify door.jpg --as Ada --model model.pt --db tuned.sqlite3
"""


def _count(minimum: int):
    """argparse type: an integer >= minimum."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _tolerance(text: str) -> float:
    """argparse type: a finite distance threshold > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# -- options shared by the subcommands ------------------------------------------------------
def _db_opts(p: argparse.ArgumentParser) -> None:
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


def _model_opts(p: argparse.ArgumentParser, tolerance: bool = True) -> None:
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
        "--upsample",
        type=_count(0),
        default=1,
        metavar="N",
        help="double the image N times before HOG detection: 1 finds faces down to about "
        "40 px, 0 only from 80 px but 4x faster (default: 1)",
    )
    if tolerance:
        p.add_argument(
            "--tolerance",
            type=_tolerance,
            default=None,
            metavar="T",
            help="distance threshold tau: same person when d <= T; lower is stricter "
            "(default: the database's calibrated tau, else 0.6)",
        )


def _parser(sub: argparse._SubParsersAction, name: str, help: str, epilog: str = ""):
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cnnkit face`` and its subcommands to the ``cnnkit`` parser."""
    face = sub.add_parser(
        "face",
        help="face verification and recognition with a person database",
        description="Face verification (is this Ada?) and recognition (who is this?) with "
        "dlib's face ResNet in PyTorch, a person database, and triplet-loss training.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fsub = face.add_subparsers(dest="face_command", metavar="SUBCOMMAND")
    face.set_defaults(func=lambda args: (face.print_help(), 2)[1])

    p = _parser(
        fsub,
        "enroll",
        "add a person (or more photos of one) to the database",
        "Each photo must show exactly one face (or pass --largest). All photos are checked\n"
        "before anything is written; then they are stored in one transaction. The distance of\n"
        "each new photo to the person's photos already enrolled is reported.\n\n"
        "Example:\n  cnnkit face enroll Ada ada.jpg\n  cnnkit face enroll Ada ada-2019.jpg "
        "ada-beach.jpg --largest",
    )
    p.add_argument("name", metavar="NAME", help="the person's name")
    p.add_argument("photos", metavar="PHOTO", nargs="+", type=Path, help="photos of NAME")
    p.add_argument(
        "--largest", action="store_true", help="take the largest face when a photo has several"
    )
    _db_opts(p)
    _model_opts(p)
    p.set_defaults(func=run_enroll)

    p = _parser(
        fsub,
        "verify",
        "is the face in PHOTO the enrolled person NAME?",
        "Prints 'match <distance>' and exits 0, or 'no-match <distance>' and exits 1 (2 on an\n"
        "error). The distance is to NAME's closest enrolled photo; with several faces in PHOTO\n"
        "the largest is used (a notice on stderr says so).\n\n"
        "Example:\n  cnnkit face verify door.jpg --as Ada --tolerance 0.5",
    )
    p.add_argument("photo", metavar="PHOTO", type=Path)
    p.add_argument("--as", dest="name", required=True, metavar="NAME", help="claimed identity")
    _db_opts(p)
    _model_opts(p)
    p.set_defaults(func=run_verify)

    p = _parser(
        fsub,
        "identify",
        "name every face in photos (CSV on stdout)",
        "Columns: file,top,right,bottom,left,name,distance. name is 'unknown' when no enrolled\n"
        "person is within the tolerance. An unreadable image gets a warning on stderr and the\n"
        "exit code is 2 at the end; the others are still processed. An image without a face\n"
        "gets a notice on stderr ('<file>: no face found') and no row.\n\n"
        "Example:\n  cnnkit face identify party/ --cpus 2 > who.csv",
    )
    p.add_argument("inputs", metavar="PHOTO|DIR", nargs="+", type=Path)
    p.add_argument(
        "--batch-size", type=_count(1), default=32, metavar="N", help="faces per encoder batch (32)"
    )
    p.add_argument(
        "--cpus",
        type=_count(1),
        default=1,
        metavar="N",
        help="processes for reading and detecting (default: 1)",
    )
    _db_opts(p)
    _model_opts(p)
    p.set_defaults(func=run_identify)

    p = _parser(fsub, "list", "list enrolled persons (CSV: name,photos,enrolled)")
    _db_opts(p)
    p.set_defaults(func=run_list)

    p = _parser(fsub, "remove", "remove a person and all their photos")
    p.add_argument("name", metavar="NAME")
    _db_opts(p)
    p.set_defaults(func=run_remove)

    p = _parser(fsub, "rename", "rename a person")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    _db_opts(p)
    p.set_defaults(func=run_rename)

    p = _parser(
        fsub,
        "detect",
        "face boxes in photos (CSV: file,top,right,bottom,left)",
        "An unreadable image gets a warning on stderr and the exit code is 2 at the end; the\n"
        "others are still processed. An image without a face gets a notice on stderr\n"
        "('<file>: no face found') and no row.\n\n"
        "Example:\n  cnnkit face detect photos/ --upsample 0",
    )
    p.add_argument("inputs", metavar="PHOTO|DIR", nargs="+", type=Path)
    p.add_argument("--upsample", type=_count(0), default=1, metavar="N", help="HOG upsampling (1)")
    p.set_defaults(func=run_detect)

    p = _parser(
        fsub,
        "export",
        "write the database to a portable .npz file",
        "The file holds names, descriptors, sources, hashes, the encoder id and tau; it is\n"
        "written atomically. Example:\n  cnnkit face export backup.npz",
    )
    p.add_argument("file", metavar="FILE", type=Path)
    _db_opts(p)
    p.set_defaults(func=run_export)

    p = _parser(
        fsub,
        "import",
        "merge an exported .npz file into the database (one transaction)",
        "Persons are matched by name; descriptors already present are skipped. A file made\n"
        "with another encoder is refused.\n\n"
        "Example:\n  cnnkit face import backup.npz --db new.sqlite3",
    )
    p.add_argument("file", metavar="FILE", type=Path)
    _db_opts(p)
    p.set_defaults(func=run_import)

    pairs_help = (
        "Pairs file: the LFW format (header 'n_folds<TAB>n', then per fold n matched lines\n"
        "'name i j' and n mismatched lines 'name1 i name2 j'); images are\n"
        "DIR/<name>/<name>_<iiii>.jpg. Each image gives one descriptor: the detected face\n"
        "nearest the image centre; when none is found, detection is retried with one more\n"
        "upsampling, then the landmarks are predicted in a centred box of 0.42 x the image side\n"
        "(LFW images are centred on the person).\n"
    )
    p = _parser(
        fsub,
        "calibrate",
        "choose the tolerance tau on labelled pairs and store it in the database",
        pairs_help + "\nThe k-fold protocol: for each fold, tau is chosen on the other folds and\n"
        "accuracy measured on it; mean +- standard error is printed. The tau stored is the best\n"
        "on all pairs.\n\nExample:\n  cnnkit face calibrate --pairs pairs.txt --images lfw/",
    )
    _pairs_opts(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _db_opts(p)
    _model_opts(p, tolerance=False)
    p.set_defaults(func=run_calibrate)

    p = _parser(
        fsub,
        "evaluate",
        "verification accuracy on labelled pairs (at tau, k-fold, ROC AUC, TAR@FAR=1e-3)",
        pairs_help + "\n--json keys: accuracy_at_tau, tau, accuracy_kfold, accuracy_kfold_se,\n"
        "auc, tar_at_far_1e-3 (and n_pairs, n_folds).\n\nExample:\n"
        "  cnnkit face evaluate --pairs pairs.txt --images lfw/ --roc roc.png --json",
    )
    _pairs_opts(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--roc", type=Path, metavar="PNG", help="write the ROC curve here")
    _db_opts(p)
    _model_opts(p)
    p.set_defaults(func=run_evaluate)

    p = _parser(
        fsub,
        "train",
        "train or fine-tune the encoder with the triplet loss",
        "DIR holds one subfolder of photos per person (at least 2 persons, one with 2+ photos).\n"
        "Each step samples P persons x K photos and mines triplets in the batch. The bar shows\n"
        "the loss and the fraction of active triplets (loss > 0). A checkpoint is written\n"
        "atomically after every epoch; --resume continues it. Use the result with --model.\n\n"
        "Examples:\n  cnnkit face train --data people/ --out tuned.pt --epochs 3\n"
        "  cnnkit face train --data people/ --out tuned.pt --epochs 6 --resume\n"
        "  cnnkit face enroll Ada ada.jpg --model tuned.pt --db tuned.sqlite3",
    )
    p.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="one subfolder of photos per person"
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="MODEL.pt",
        help="checkpoint written after every epoch; use it with --model",
    )
    p.add_argument(
        "--init",
        default="dlib",
        metavar="dlib|scratch|PATH",
        help="start from dlib's weights (default), random weights, or a model file",
    )
    p.add_argument("--margin", type=float, default=0.2, help="alpha of the triplet loss (0.2)")
    p.add_argument("--epochs", type=_count(1), default=5, help="total epochs (5)")
    p.add_argument(
        "--mining",
        choices=("semi-hard", "batch-hard"),
        default="semi-hard",
        help="triplets per batch: semi-hard (FaceNet; default) or batch-hard",
    )
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument(
        "--optimizer",
        choices=("sgd", "adam"),
        default="sgd",
        help="sgd (momentum 0.9; default) or adam",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: fine-tuning 1e-4 with sgd, 1e-6 with adam; "
        "from scratch 1e-2 / 1e-3). Larger rates quickly undo dlib's training",
    )
    p.add_argument(
        "--freeze",
        type=_count(0),
        default=0,
        metavar="N",
        help="keep the stem and the first N of the 14 residual units fixed (default: 0)",
    )
    p.add_argument(
        "--persons", type=_count(2), default=8, metavar="P", help="persons per batch (8)"
    )
    p.add_argument("--photos", type=_count(2), default=4, metavar="K", help="photos per person (4)")
    p.add_argument("--steps", type=_count(1), default=None, help="steps per epoch (photos / (P*K))")
    p.add_argument("--aligned", action="store_true", help="photos already are 150x150 chips")
    p.add_argument("--no-augment", action="store_true", help="no random flip / brightness")
    p.add_argument("--upsample", type=_count(0), default=1, metavar="N", help="HOG upsampling (1)")
    p.add_argument("--device", default="cpu", help="torch device (cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch sampling (0)")
    p.set_defaults(func=run_train)


def _pairs_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", required=True, type=Path, metavar="pairs.txt")
    p.add_argument("--images", required=True, type=Path, metavar="DIR")
    p.add_argument(
        "--flip", action="store_true", help="average each descriptor with its mirror image's"
    )


# -- helpers ---------------------------------------------------------------------------------
def _db_exists(db_path: Path | None) -> bool:
    from cnnkit.face.gallery import default_db_path

    return Path(db_path or default_db_path()).exists()


def _gallery(args: argparse.Namespace, create: bool = False):
    from cnnkit.face.gallery import Gallery

    return Gallery(args.db, create=create, timeout=args.timeout)


def _encoder(args: argparse.Namespace):
    from cnnkit.face.pipeline import load_encoder

    return load_encoder(args.model, device=args.device)


def _fmt(d: float) -> str:
    return f"{d:.4f}"


def _check_inputs(paths: list[Path]) -> list[Path]:
    from cnnkit.errors import ImageReadError
    from cnnkit.io import list_images

    for p in paths:
        if not p.exists():
            raise ImageReadError("no such file or folder", path=p)
    files = list_images(paths)
    if not files:
        raise ImageReadError("no image files found", path=paths[0])
    return files


def _warn_unreadable(message: str) -> None:
    print(f"warning: {message}; skipped", file=sys.stderr)


def _no_face(path: Path) -> None:
    print(f"{path}: no face found", file=sys.stderr)


def _failed_summary(failed: int, total: int) -> int:
    """Exit code after a batch: 2 (with one summary line) when some file could not be read."""
    if not failed:
        return 0
    print(f"error: {failed} of {total} file(s) could not be read", file=sys.stderr)
    return 2


# -- commands --------------------------------------------------------------------------------
def run_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from cnnkit.face.gallery import DEFAULT_TOLERANCE, Gallery, check_name, default_db_path
    from cnnkit.face.recognize import file_sha256, one_face

    name = check_name(args.name)
    db_path = Path(args.db) if args.db is not None else default_db_path()
    encoder = _encoder(args)
    tau = args.tolerance if args.tolerance is not None else DEFAULT_TOLERANCE
    previous = np.zeros((0, encoder.dim), np.float32)
    seen: set[str] = set()  # sha256 of the person's enrolled photos
    if db_path.exists():  # a wrong database fails before any image work
        with Gallery(db_path, create=False, timeout=args.timeout) as db:
            db.check_model(encoder.model_id, encoder.dim)
            tau = db.tolerance(args.tolerance)
            if name in {p.name for p in db.persons()}:
                previous = db.vectors_of(name)
                seen = {h for _, h in db.sources_of(name) if h}
    # Every photo is checked before anything is written.
    photos, vectors, sources, hashes = [], [], [], []
    for photo in args.photos:
        found = one_face(photo, args.upsample, encoder, largest=args.largest)
        digest = file_sha256(photo)
        if digest in seen:
            print(f"skipped {photo}: this file is already enrolled for {name}")
            continue
        seen.add(digest)
        photos.append(photo)
        vectors.append(found.embedding)
        sources.append(photo.name)
        hashes.append(digest)
    if not vectors:
        print(f"{name} has {len(previous)} photo(s); nothing new to enroll")
        return 0
    with Gallery(db_path, create=True, timeout=args.timeout) as db:
        total = db.add(
            name, np.stack(vectors), model_id=encoder.model_id, sources=sources, sha256s=hashes
        )
    known = previous
    for photo, v in zip(photos, vectors, strict=True):
        if len(known):
            d = np.sqrt(((known - v[None]) ** 2).sum(axis=1))
            note = f"distance to {name}'s other photos: min {_fmt(d.min())}, mean {_fmt(d.mean())}"
            if d.min() > tau:
                log.warning(
                    "warning: %s is farther than tau %.2f from every other photo of %s: "
                    "is it the same person?",
                    photo,
                    tau,
                    name,
                )
        else:
            note = "first photo"
        print(f"enrolled {name}: {photo} ({note})")
        known = np.concatenate([known, v[None]])
    print(f"{name} now has {total} photo(s)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from cnnkit.face.recognize import box_area, find_faces, one_face, verify

    with _gallery(args) as db:
        db.vectors_of(args.name)  # unknown name: error before loading the encoder
        encoder = _encoder(args)
        db.check_model(encoder.model_id, encoder.dim)
        found = find_faces(args.photo, args.upsample, encoder)
        if not found:
            one_face(args.photo, args.upsample, encoder)  # raises NoFaceError with its hint
        if len(found) > 1:
            print(f"{args.photo}: {len(found)} faces found, using the largest", file=sys.stderr)
        face = max(found, key=lambda f: box_area(f.box))
        match, d = verify(face.embedding, args.name, db, args.tolerance)
    print(f"{'match' if match else 'no-match'} {_fmt(d)}")
    return 0 if match else 1


def run_identify(args: argparse.Namespace) -> int:
    from cnnkit.face.recognize import identify_many

    files = _check_inputs(args.inputs)
    if args.batch_size < 1 or args.cpus < 1:
        from cnnkit.errors import CnnkitError

        raise CnnkitError("--batch-size and --cpus must be at least 1")
    files = [Path(f) for f in files]
    failed = 0
    answered: set[Path] = set()  # files with a row or a warning
    done = 0  # files[:done] are finished (rows come in file order)

    def finish(upto: Path | None) -> None:
        """Files before ``upto`` (all with None) that gave nothing had no face."""
        nonlocal done
        while done < len(files) and (upto is None or files[done] != upto):
            if files[done] not in answered:
                _no_face(files[done])
            done += 1

    with _gallery(args) as db:
        encoder = _encoder(args)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["file", "top", "right", "bottom", "left", "name", "distance"])
        for path, box, name, d, error in identify_many(
            files, db, encoder, args.tolerance, args.upsample, args.batch_size, args.cpus
        ):
            path = Path(path)
            finish(path)
            answered.add(path)
            if error is not None:
                _warn_unreadable(error)
                failed += 1
                continue
            assert box is not None
            writer.writerow([str(path), *box, name or "unknown", _fmt(d)])
            sys.stdout.flush()
        finish(None)
    return _failed_summary(failed, len(files))


def run_list(args: argparse.Namespace) -> int:
    with _gallery(args) as db:
        persons = db.persons()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["name", "photos", "enrolled"])
        for p in persons:
            writer.writerow([p.name, p.n_photos, p.created_at])
        tau = db.tau
        log.info(
            "%d person(s), %d photo(s); encoder %s; tau %s; %s",
            len(persons),
            sum(p.n_photos for p in persons),
            db.model_id or "(none yet)",
            f"{tau:.4f} (calibrated)" if tau is not None else "0.6 (default)",
            db.path,
        )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _gallery(args) as db:
        n = db.remove(args.name)
    print(f"removed {args.name} ({n} photo(s))")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    with _gallery(args) as db:
        db.rename(args.old, args.new)
    print(f"renamed {args.old} to {args.new.strip()}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError
    from cnnkit.face.detection import detect, load_image

    files = _check_inputs(args.inputs)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file", "top", "right", "bottom", "left"])
    failed = 0
    for path in files:
        try:
            boxes = detect(load_image(path), args.upsample)
        except (CnnkitError, OSError) as exc:
            if len(files) == 1:
                raise
            _warn_unreadable(exc.message if isinstance(exc, CnnkitError) else f"{path}: {exc}")
            failed += 1
            continue
        if not boxes:
            _no_face(path)
        for box in boxes:
            writer.writerow([str(path), *box])
        sys.stdout.flush()
    return _failed_summary(failed, len(files))


def run_export(args: argparse.Namespace) -> int:
    with _gallery(args) as db:
        n = db.export(args.file)
        persons = len(db.persons())
    print(f"exported {persons} person(s), {n} photo descriptor(s) to {args.file}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cnnkit.face.gallery import _read_export

    _read_export(args.file)  # a bad file fails before a database is created
    with _gallery(args, create=True) as db:
        n = db.import_(args.file)
        persons = len(db.persons())
    print(f"imported {n} new descriptor(s); the database has {persons} person(s)")
    return 0


def _pair_distances(args: argparse.Namespace, encoder) -> tuple[Any, Any, Any]:
    import numpy as np

    from cnnkit.face.evaluate import pair_distances, read_pairs
    from cnnkit.face.recognize import PairStats, pair_embedder

    pairs = read_pairs(args.pairs)
    stats = PairStats()
    embedder = pair_embedder(encoder, args.upsample, args.flip, stats)
    d = pair_distances(pairs, args.images, embedder)
    log.info(
        "%d pairs, %d images: %d with several faces (centred one used), %d found only with "
        "one more upsampling, %d without a face (centre-box fallback)",
        len(pairs),
        stats.images,
        stats.several,
        stats.retried,
        stats.fallback,
    )
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    return d, same, folds


def _n_folds(folds) -> tuple[Any, int]:
    import numpy as np

    n = len(np.unique(folds))
    # A file with one fold (no header): 10 contiguous folds, as the standard protocol.
    return (folds, n) if n >= 2 else (None, 10)


def run_calibrate(args: argparse.Namespace) -> int:
    from cnnkit.face.evaluate import best_threshold, kfold_accuracy

    with _gallery(args, create=True) as db:
        encoder = _encoder(args)
        db.check_model(encoder.model_id, encoder.dim)
        d, same, folds = _pair_distances(args, encoder)
        fold_ids, n_folds = _n_folds(folds)
        kf = kfold_accuracy(d, same, n_folds=n_folds, folds=fold_ids)
        tau, acc_all = best_threshold(d, same)
        db.set_tau(tau, model_id=encoder.model_id, dim=encoder.dim)
        path = db.path
    if args.json:
        print(
            json.dumps(
                {
                    "tau": tau,
                    "accuracy_kfold": kf.mean,
                    "accuracy_kfold_se": kf.se,
                    "fold_accuracies": kf.accuracies,
                    "fold_thresholds": kf.thresholds,
                    "accuracy_at_tau": acc_all,
                    "n_pairs": len(d),
                    "n_folds": len(kf.accuracies),
                    "model_id": encoder.model_id,
                    "db": str(path),
                }
            )
        )
    else:
        print(f"accuracy {kf.mean:.4f} +- {kf.se:.4f} ({len(kf.accuracies)}-fold, {len(d)} pairs)")
        print(f"tau {tau:.4f} stored in {path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from cnnkit.face.evaluate import evaluate_distances, plot_roc
    from cnnkit.face.gallery import DEFAULT_TOLERANCE

    if args.tolerance is not None:
        tau = args.tolerance
    elif args.db is not None or _db_exists(None):
        with _gallery(args) as db:
            tau = db.tolerance(None)
    else:
        tau = DEFAULT_TOLERANCE
    encoder = _encoder(args)
    d, same, folds = _pair_distances(args, encoder)
    fold_ids, n_folds = _n_folds(folds)
    ev = evaluate_distances(d, same, tau, folds=fold_ids, n_folds=n_folds)
    if args.roc is not None:
        plot_roc(d, same, args.roc, title=f"ROC, {args.pairs.parent.name or args.pairs.name}")
    if args.json:
        print(json.dumps(ev.as_json()))
    else:
        print(f"accuracy at tau {ev.tau:.4f}: {ev.accuracy_at_tau:.4f}")
        print(
            f"accuracy ({ev.n_folds}-fold): {ev.accuracy_kfold:.4f} +- {ev.accuracy_kfold_se:.4f}"
        )
        print(f"ROC AUC: {ev.auc:.5f}")
        print(f"TAR at FAR=1e-3: {ev.tar_at_far_1e_3:.4f}")
        if args.roc is not None:
            print(f"ROC curve: {args.roc}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from cnnkit.face.train import TrainConfig, train_encoder

    config = TrainConfig(
        data=args.data,
        out=args.out,
        init=args.init,
        margin=args.margin,
        epochs=args.epochs,
        mining=args.mining,
        lr=args.lr,
        optimizer=args.optimizer,
        freeze=args.freeze,
        persons_per_batch=args.persons,
        photos_per_person=args.photos,
        steps_per_epoch=args.steps,
        upsample=args.upsample,
        aligned=args.aligned,
        augment=not args.no_augment,
        resume=args.resume,
        device=args.device,
        seed=args.seed,
    )
    history = train_encoder(config)
    for record in history:
        print(
            f"epoch {record['epoch']}: loss {record['loss']:.4f}, "
            f"active triplets {record['active']:.2f}"
        )
    if history:
        print(f"saved {args.out} (model id {history[-1]['model_id']}); use it with --model")
    else:
        print(f"{args.out} already has {args.epochs} epoch(s); raise --epochs to train more")
    return 0
