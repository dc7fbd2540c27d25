"""``cnnkit face enroll | verify | identify | detect``: the recognition verbs."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from cnnkit.cli.face.common import (
    check_inputs,
    count,
    db_opts,
    detector_opt,
    encoder_loader,
    failed_summary,
    fmt,
    gallery,
    model_opts,
    no_face,
    parser,
    pipeline_opt,
    warn_unreadable,
)


def register(fsub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to ``cnnkit face``."""
    p = parser(
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
    db_opts(p)
    model_opts(p)
    pipeline_opt(p)
    p.set_defaults(func=run_enroll)

    p = parser(
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
    db_opts(p)
    model_opts(p)
    p.set_defaults(func=run_verify)

    p = parser(
        fsub,
        "identify",
        "name every face in photos (CSV on stdout)",
        "Columns: file,top,right,bottom,left,name,distance. name is 'unknown' when no enrolled\n"
        "person is within the tolerance. An unreadable image gets a warning on stderr and the\n"
        "exit code is 2 at the end; the others are still processed. An image without a face\n"
        "gets a notice on stderr ('<file>: no face found') and no row.\n\n"
        "A video (.mp4, .mkv, .avi, .mov, .webm) is read frame by frame: faces are detected\n"
        "every --every frames and tracked in between by box overlap; each track is named once\n"
        "and again every --refresh detections. Its CSV (stdout, or --csv) has the columns\n"
        "frame,time,track,top,right,bottom,left,name,distance; -o writes a copy with the\n"
        "boxes and names drawn.\n\n"
        "Examples:\n  cnnkit face identify party/ --cpus 2 > who.csv\n"
        "  cnnkit face identify clip.mp4 -o annotated.mp4 --every 5 --csv who.csv",
    )
    p.add_argument("inputs", metavar="PHOTO|DIR|VIDEO", nargs="+", type=Path)
    p.add_argument("-o", "--output", type=Path, metavar="VIDEO", help="video: annotated copy")
    p.add_argument(
        "--every", type=count(1), default=5, metavar="N", help="video: detect every N frames (5)"
    )
    p.add_argument(
        "--refresh",
        type=count(1),
        default=10,
        metavar="N",
        help="video: describe each track again every N detections (10)",
    )
    p.add_argument("--csv", type=Path, metavar="OUT.csv", help="video: write the CSV here")
    p.add_argument(
        "--batch-size", type=count(1), default=32, metavar="N", help="faces per encoder batch (32)"
    )
    p.add_argument(
        "--cpus",
        type=count(1),
        default=1,
        metavar="N",
        help="processes for reading and detecting (default: 1)",
    )
    db_opts(p)
    model_opts(p)
    p.set_defaults(func=run_identify)

    p = parser(
        fsub,
        "detect",
        "face boxes in photos (CSV: file,top,right,bottom,left)",
        "An unreadable image gets a warning on stderr and the exit code is 2 at the end; the\n"
        "others are still processed. An image without a face gets a notice on stderr\n"
        "('<file>: no face found') and no row.\n\n"
        "Example:\n  cnnkit face detect photos/ --upsample 0",
    )
    p.add_argument("inputs", metavar="PHOTO|DIR", nargs="+", type=Path)
    p.add_argument(
        "--upsample",
        type=count(0),
        default=1,
        metavar="N",
        help="detector upsampling (1; 2 finds faces under ~60 px in a 12 Mpx photo, which is "
        "searched scaled down to 3 Mpx)",
    )
    detector_opt(p)
    p.set_defaults(func=run_detect)


def run_enroll(args: argparse.Namespace) -> int:
    from cnnkit.face import check_name, enroll

    name = check_name(args.name)  # a bad name fails before the database is opened
    with _new_db_guard(args), gallery(args, create=True) as db:
        before = _count_of(db, name)
        report = enroll(
            db,
            name,
            args.photos,
            encoder=encoder_loader(args),
            largest=args.largest,
            upsample=args.upsample,
            detector=args.detector,
            tolerance=args.tolerance,
            pipeline=args.pipeline,
        )
    for photo, p in zip(args.photos, report.photos, strict=True):
        if p.reason == "already enrolled":
            print(f"skipped {photo}: this file is already enrolled for {name}")
            continue
        if p.enrolled_as:
            print(
                f"warning: {photo} is already enrolled for {', '.join(p.enrolled_as)}; "
                f"enrolled for {name} too (remove it there if it is not the same person)",
                file=sys.stderr,
            )
        if p.far:
            print(
                f"warning: {photo} is farther than tau {report.tau:.2f} from every other photo "
                f"of {name}: is it the same person?",
                file=sys.stderr,
            )
        if p.min_distance is not None and p.mean_distance is not None:
            note = (
                f"distance to {name}'s other photos: min {fmt(p.min_distance)}, "
                f"mean {fmt(p.mean_distance)}"
            )
        else:
            note = "first photo"
        print(f"enrolled {name}: {photo} ({note})")
    if not report.added:
        print(f"{name} has {before} photo(s); nothing new to enroll")
    else:
        print(f"{name} now has {report.total} photo(s)")
    return 0


def _count_of(db, name: str) -> int:
    from cnnkit.errors import NotFoundError

    try:
        return len(db.vectors_of(name))
    except NotFoundError:
        return 0


class _new_db_guard:
    """Remove a database file that this command created when the command then fails, so that
    a refused enrollment leaves no empty database behind (only if it still holds nobody)."""

    def __init__(self, args: argparse.Namespace):
        from cnnkit.face import default_db_path

        self.path = Path(args.db) if args.db is not None else default_db_path()
        self.new = not self.path.exists()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or not self.new or not self.path.is_file():
            return
        import contextlib

        from cnnkit.errors import CnnkitError
        from cnnkit.face import Gallery

        with contextlib.suppress(CnnkitError, OSError):
            with Gallery(self.path, create=False) as db:
                if db.persons():
                    return
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def run_verify(args: argparse.Namespace) -> int:
    from cnnkit.face import verify_photo

    with gallery(args, readonly=True) as db:
        result = verify_photo(
            db,
            args.photo,
            args.name,
            tolerance=args.tolerance,
            encoder=encoder_loader(args),
            upsample=args.upsample,
            detector=args.detector,
        )
    if result.faces > 1:
        print(f"{args.photo}: {result.faces} faces found, using the largest", file=sys.stderr)
    print(f"{'match' if result.match else 'no-match'} {fmt(result.distance)}")
    return 0 if result.match else 1


def run_identify_video(args: argparse.Namespace) -> int:
    import contextlib

    from cnnkit.face.video import identify_video
    from cnnkit.io.atomic import atomic_write

    header = ["frame", "time", "track", "top", "right", "bottom", "left", "name", "distance"]
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(gallery(args, readonly=True))
        if args.csv is not None:
            out = stack.enter_context(atomic_write(args.csv, "w"))
        else:
            out = sys.stdout
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)

        def row(r) -> None:
            writer.writerow([r.frame, f"{r.time:.3f}", r.track, *r.box, r.name or "unknown",
                             fmt(r.distance)])  # fmt: skip

        stats = identify_video(
            db,
            args.inputs[0],
            every=args.every,
            refresh=args.refresh,
            out=args.output,
            encoder=encoder_loader(args),
            upsample=args.upsample,
            tolerance=args.tolerance,
            on_row=row,
            detector=args.detector,
        )
    print(
        f"{stats.frames} frames, {stats.detections} detections, {stats.tracks} tracks, "
        f"{stats.descriptors} descriptors, {stats.frames / max(stats.seconds, 1e-9):.1f} frames/s",
        file=sys.stderr,
    )
    return 0


def run_identify(args: argparse.Namespace) -> int:
    from cnnkit.face import identification_threshold, identify_many
    from cnnkit.face.video import is_video

    if len(args.inputs) == 1 and is_video(args.inputs[0]):
        return run_identify_video(args)
    if args.output is not None or args.csv is not None:
        from cnnkit.errors import CnnkitError

        raise CnnkitError("-o and --csv are for a video", hint="pass one .mp4 (or .mkv, .avi)")

    files = [Path(f) for f in check_inputs(args.inputs)]
    failed = 0
    answered: set[Path] = set()  # files with a row or a warning
    done = 0  # files[:done] are finished (rows come in file order)

    def finish(upto: Path | None) -> None:
        """Files before ``upto`` (all with None) that gave nothing had no face."""
        nonlocal done
        while done < len(files) and (upto is None or files[done] != upto):
            if files[done] not in answered:
                no_face(files[done])
            done += 1

    with gallery(args, readonly=True) as db:
        threshold = identification_threshold(db, args.tolerance, log_warning=False)
        if threshold.warning:
            print(f"warning: {threshold.warning}", file=sys.stderr)
        encoder = encoder_loader(args)()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["file", "top", "right", "bottom", "left", "name", "distance"])
        for path, box, name, d, error in identify_many(
            files,
            db,
            encoder,
            None,
            args.upsample,
            args.batch_size,
            args.cpus,
            threshold,
            args.detector,
        ):
            path = Path(path)
            finish(path)
            answered.add(path)
            if error is not None:
                warn_unreadable(error)
                failed += 1
                continue
            assert box is not None
            writer.writerow([str(path), *box, name or "unknown", fmt(d)])
            sys.stdout.flush()
        finish(None)
    return failed_summary(failed, len(files))


def run_detect(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError
    from cnnkit.face import detect_faces

    files = check_inputs(args.inputs)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file", "top", "right", "bottom", "left"])
    failed = 0
    for path in files:
        try:
            boxes = detect_faces(path, args.upsample, args.detector)
        except (CnnkitError, OSError) as exc:
            if len(files) == 1:
                raise
            warn_unreadable(exc.message if isinstance(exc, CnnkitError) else f"{path}: {exc}")
            failed += 1
            continue
        if not boxes:
            no_face(path)
        for box in boxes:
            writer.writerow([str(path), *box])
        sys.stdout.flush()
    return failed_summary(failed, len(files))
