"""``cnnkit face calibrate | evaluate | train``: labelled pairs and encoder training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnkit.cli.face.common import (
    count,
    db_exists,
    db_opts,
    encoder_loader,
    gallery,
    model_opts,
    norm_opt,
    pairs_opts,
    parser,
)
from cnnkit.face.descriptors import with_flip


def register(fsub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to ``cnnkit face``."""
    pairs_help = (
        "Pairs file: the LFW format (header 'n_folds<TAB>n', then per fold n matched lines\n"
        "'name i j' and n mismatched lines 'name1 i name2 j'); images are\n"
        "DIR/<name>/<name>_<iiii>.jpg. Each image gives one descriptor: the detected face\n"
        "nearest the image centre; when none is found, detection is retried with one more\n"
        "upsampling, then the landmarks are predicted in a centred box of 0.42 x the image side\n"
        "(LFW images are centred on the person).\n"
    )
    p = parser(
        fsub,
        "calibrate",
        "choose the tolerance tau on labelled pairs and store it in the database",
        pairs_help + "\nThe k-fold protocol: for each fold, tau is chosen on the other folds and\n"
        "accuracy measured on it; mean +- standard error is printed. The tau stored is the best\n"
        "on all pairs (used by verify and enroll).\n\n"
        "--for identification instead takes --images DIR with one subfolder per person: every\n"
        "person with 2+ photos is enrolled with the first and searched with the others, the\n"
        "rest search as strangers; the tau stored is the one whose false positive\n"
        "identification rate is --fpir (used by identify; a larger gallery needs a stricter\n"
        "tau, so the gallery size is stored too and identify warns when it is outgrown).\n\n"
        "Examples:\n  cnnkit face calibrate --pairs pairs.txt --images lfw/\n"
        "  cnnkit face calibrate --for identification --fpir 0.001 --images lfw/",
    )
    pairs_opts(p, required=False)
    p.add_argument(
        "--for",
        dest="purpose",
        choices=("verification", "identification"),
        default="verification",
        help="which tau: 1:1 on --pairs (default), or 1:N on a person folder",
    )
    p.add_argument(
        "--fpir",
        type=float,
        default=0.001,
        help="--for identification: the false positive identification rate (0.001)",
    )
    p.add_argument(
        "--gallery-size",
        type=count(2),
        default=None,
        metavar="N",
        help="--for identification: enroll N persons (default: all with 2+ photos)",
    )
    norm_opt(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    db_opts(p)
    model_opts(p, tolerance=False)
    p.set_defaults(func=run_calibrate)

    p = parser(
        fsub,
        "evaluate",
        "verification accuracy on labelled pairs (at tau, k-fold, ROC AUC, TAR@FAR=1e-3)",
        pairs_help + "\n--json keys: accuracy_at_tau, tau, accuracy_kfold, accuracy_kfold_se,\n"
        "auc, tar_at_far_1e-3 (and n_pairs, n_folds).\n\nExample:\n"
        "  cnnkit face evaluate --pairs pairs.txt --images lfw/ --roc roc.png --json",
    )
    pairs_opts(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--roc", type=Path, metavar="PNG", help="write the ROC curve here")
    db_opts(p)
    model_opts(p)
    p.set_defaults(func=run_evaluate)

    p = parser(
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
    p.add_argument("--epochs", type=count(1), default=5, help="total epochs (5)")
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
        type=count(0),
        default=0,
        metavar="N",
        help="keep the stem and the first N of the 14 residual units fixed (default: 0)",
    )
    p.add_argument("--persons", type=count(2), default=8, metavar="P", help="persons per batch (8)")
    p.add_argument("--photos", type=count(2), default=4, metavar="K", help="photos per person (4)")
    p.add_argument("--steps", type=count(1), default=None, help="steps per epoch (photos / (P*K))")
    p.add_argument("--aligned", action="store_true", help="photos already are 150x150 chips")
    p.add_argument("--no-augment", action="store_true", help="no random flip / brightness")
    p.add_argument("--upsample", type=count(0), default=1, metavar="N", help="HOG upsampling (1)")
    p.add_argument("--device", default="cpu", help="torch device (cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch sampling (0)")
    p.set_defaults(func=run_train)


def run_calibrate(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError
    from cnnkit.face import calibrate

    if args.purpose == "identification":
        return _calibrate_identification(args)
    if args.pairs is None:
        raise CnnkitError(
            "--pairs is required", hint="pass --pairs pairs.txt, or --for identification"
        )
    with gallery(args, create=True) as db:
        cal = calibrate(
            args.pairs,
            args.images,
            store=db,
            encoder=encoder_loader(args),
            upsample=args.upsample,
            flip=args.flip,
            pipeline=args.pipeline,
            detector=args.detector,
        )
        path = db.path
    if args.json:
        print(
            json.dumps(
                {
                    "tau": cal.tau,
                    "accuracy_kfold": cal.accuracy_kfold,
                    "accuracy_kfold_se": cal.accuracy_kfold_se,
                    "fold_accuracies": cal.fold_accuracies,
                    "fold_thresholds": cal.fold_thresholds,
                    "accuracy_at_tau": cal.accuracy_at_tau,
                    "n_pairs": cal.n_pairs,
                    "n_folds": cal.n_folds,
                    "model_id": cal.model_id,
                    "db": str(path),
                }
            )
        )
    else:
        print(
            f"accuracy {cal.accuracy_kfold:.4f} +- {cal.accuracy_kfold_se:.4f} "
            f"({cal.n_folds}-fold, {cal.n_pairs} pairs)"
        )
        print(f"tau {cal.tau:.4f} stored in {path}")
    return 0


def _calibrate_identification(args: argparse.Namespace) -> int:
    from cnnkit.face import calibrate_identification

    with gallery(args, create=True) as db:
        cal = calibrate_identification(
            args.images,
            store=db,
            fpir=args.fpir,
            gallery_size=args.gallery_size,
            encoder=encoder_loader(args),
            upsample=args.upsample,
            pipeline=with_flip(args.pipeline, args.flip) if args.pipeline or args.flip else None,
            norm=args.norm,
            detector=args.detector,
        )
        path = db.path
    ev = cal.evaluation
    if args.json:
        print(
            json.dumps(
                {
                    "tau": cal.tau,
                    "fpir": cal.fpir,
                    "fnir": cal.fnir,
                    "gallery_size": cal.gallery_size,
                    "pipeline": cal.pipeline,
                    "db": str(path),
                    **ev.as_json(),
                }
            )
        )
    else:
        print(
            f"gallery {ev.n_gallery} persons, {ev.n_mated} mated and {ev.n_nonmated} non-mated "
            f"searches; rank-1 {ev.rank1:.4f}"
        )
        print(f"FNIR at FPIR {cal.fpir:g}: {cal.fnir:.4f}")
        print(
            f"identification tau {cal.tau:.4f} ({cal.norm} scores, for {cal.gallery_size} "
            f"persons) stored in {path}"
        )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from cnnkit.face import DEFAULT_TOLERANCE, evaluate_pairs

    pipeline = with_flip(args.pipeline, args.flip) if args.pipeline or args.flip else None
    if args.tolerance is not None:
        tau = args.tolerance
    elif args.db is not None or db_exists(None):
        with gallery(args, readonly=True) as db:
            tau = db.tolerance(None)
            pipeline = pipeline or db.pipeline
    else:
        tau = DEFAULT_TOLERANCE
    ev = evaluate_pairs(
        args.pairs,
        args.images,
        tau=tau,
        encoder=encoder_loader(args),
        upsample=args.upsample,
        flip=args.flip,
        roc=args.roc,
        pipeline=pipeline,
        detector=args.detector,
    )
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
    from cnnkit.face import TrainConfig, train_encoder

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
