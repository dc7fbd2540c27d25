"""``cnnkit face evaluate-identification | info``: open-set 1:N figures and the database's state."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnkit.cli.face.common import (
    count,
    db_opts,
    encoder_loader,
    gallery,
    model_opts,
    norm_opt,
    parser,
    pipeline_opt,
)


def register(fsub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to ``cnnkit face``."""
    p = parser(
        fsub,
        "evaluate-identification",
        "open-set 1:N identification on a folder of persons (rank-1, FNIR at FPIR, DET)",
        "DIR holds one subfolder of photos per person (LFW's layout). Every person with 2+\n"
        "photos is enrolled with the first (or --gallery-size N of them, drawn at random) and\n"
        "searched with the others (mated searches); all photos of the other persons search as\n"
        "strangers (non-mated). Reported (NIST FRVT terms): rank-1 identification rate, and\n"
        "FNIR (mated searches not named correctly within tau) at FPIR (strangers named) = 0.01\n"
        "and 0.001, with the tau of each. Photos: the face nearest the centre; when none is\n"
        "found, one more upsampling, then a centred box.\n\n"
        "--json keys: rank1, fnir_at_fpir_0.01, fnir_at_fpir_0.001, tau_at_fpir_0.01,\n"
        "tau_at_fpir_0.001 (and n_gallery, n_mated, n_nonmated, norm).\n\n"
        "Example:\n  cnnkit face evaluate-identification --images lfw/ --det det.png --json",
    )
    p.add_argument("--images", required=True, type=Path, metavar="DIR")
    p.add_argument(
        "--gallery-size", type=count(2), default=None, metavar="N", help="persons enrolled"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--det", type=Path, metavar="PNG", help="write the DET curve here")
    norm_opt(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the --gallery-size draw (0)")
    pipeline_opt(p)
    model_opts(p, tolerance=False)
    p.set_defaults(func=run_evaluate_identification)

    p = parser(
        fsub,
        "info",
        "the database: encoder, descriptor pipeline, both taus, persons and descriptors",
        "Example:\n  cnnkit face info --db faces.sqlite3 --json",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    db_opts(p)
    p.set_defaults(func=run_info)


def run_evaluate_identification(args: argparse.Namespace) -> int:
    from cnnkit.face import evaluate_identification

    ev = evaluate_identification(
        args.images,
        gallery_size=args.gallery_size,
        encoder=encoder_loader(args),
        upsample=args.upsample,
        pipeline=args.pipeline,
        norm=args.norm,
        det=args.det,
        seed=args.seed,
        detector=args.detector,
    )
    if args.json:
        print(json.dumps(ev.as_json()))
        return 0
    print(f"gallery {ev.n_gallery} persons; {ev.n_mated} mated, {ev.n_nonmated} non-mated searches")
    print(f"rank-1: {ev.rank1:.4f}")
    for f in sorted(ev.fnir_at_fpir, reverse=True):
        print(f"FNIR at FPIR {f:g}: {ev.fnir_at_fpir[f]:.4f} (tau {ev.tau_at_fpir[f]:.4f})")
    if args.det is not None:
        print(f"DET curve: {args.det}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from cnnkit.face import DEFAULT_TOLERANCE
    from cnnkit.face.descriptors import DEFAULT_PIPELINE, PIPELINES
    from cnnkit.face.gallery_meta import info_json

    with gallery(args, readonly=True) as db:
        info = db.info()
    if args.json:
        print(json.dumps(info_json(info)))
        return 0
    print(f"database: {info.path}")
    print(f"encoder: {info.model_id or '(none yet)'}" + (f", {info.dim}-d" if info.dim else ""))
    if info.pipeline is None:
        print(f"descriptors made with: nothing enrolled yet (new ones: {DEFAULT_PIPELINE})")
    else:
        note = "" if info.pipeline_recorded else " (a database from before this was recorded)"
        print(f"descriptors made with: {info.pipeline}{note}")
        order = list(PIPELINES)  # from the oldest to the most accurate
        if info.pipeline in order and order.index(info.pipeline) < order.index(DEFAULT_PIPELINE):
            print(
                f"  the default is now {DEFAULT_PIPELINE} (more accurate): re-enroll the photos "
                "in a new --db to use it"
            )
        elif info.pipeline != DEFAULT_PIPELINE:
            print(f"  (not the default {DEFAULT_PIPELINE}: new photos and searches use it too)")
    tau = f"not calibrated ({DEFAULT_TOLERANCE})" if info.tau is None else f"{info.tau:.4f}"
    print(f"verification tau: {tau}")
    ident = info.identification
    if ident is None:
        print("identification tau: not calibrated (identify uses the verification tau)")
    else:
        print(
            f"identification tau: {ident.tau:.4f} ({ident.norm} scores, FPIR {ident.fpir:g} on "
            f"a gallery of {ident.gallery_size} persons)"
        )
    print(f"persons: {info.persons}, descriptors: {info.descriptors}")
    return 0
