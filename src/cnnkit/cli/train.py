"""``cnnkit train``, ``cnnkit predict`` and ``cnnkit evaluate``: classification training and use."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from cnnkit.errors import show_path

TRAIN_EPILOG = """\
Defaults: with --dataset digits, unset options follow the tuned digits recipe
(20 epochs, batch 32, Adam, lr 2e-3, cosine schedule, random shifts of 2 pixels),
which reaches >= 98% test accuracy on LeNet-5 with both engines;
with --data DIR: 10 epochs, batch 32, Adam, lr 1e-3, no shifts.

Examples:
  cnnkit train lenet5 --dataset digits --out digits.pt
  cnnkit train lenet5 --dataset digits --engine numpy --out digits-np.pt
  cnnkit train resnet18 --data photos/ --image-size 128 --epochs 20 --out photos.pt
  cnnkit train resnet18 --data photos/ --weights resnet18 --out photos.pt  # fine-tune ImageNet
  cnnkit train lenet5 --dataset digits --epochs 30 --out digits.pt --resume
  torchrun --nproc_per_node 2 -m cnnkit train lenet5 --data shapes/ --out shapes.pt

The checkpoint is written atomically after every epoch. Ctrl-C saves it and stops (exit 130);
run the same command with --resume to continue where it stopped.
"""

PREDICT_EPILOG = """\
Output: CSV on stdout with header file,rank,class,probability (rank 1 is the most likely).
An unreadable file (corrupt, empty, not an image) gets one warning line on stderr and no
rows; every other image is still predicted.

Exit codes: 0 all images predicted; 2 some file could not be read (reported at the end),
or a bad checkpoint or option.

Example:
  cnnkit predict --model lenet5 --weights digits.pt seven.png three.png --top-k 3
"""

EVALUATE_EPILOG = """\
Examples:
  cnnkit evaluate --model lenet5 --weights digits.pt --dataset digits --confusion cm.png
  cnnkit evaluate --model resnet18 --weights photos.pt --data photos-test/
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``predict`` and ``evaluate`` to the ``cnnkit`` parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "train",
        help="train a classifier on an image folder or the digits",
        description="Train MODEL (a `cnnkit models` name) on an image folder with one subfolder "
        "per class, or on scikit-learn's 8x8 digits (upsampled to 32x32).",
        epilog=TRAIN_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("model", metavar="MODEL", help="model name, e.g. lenet5, resnet18, resnet20")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="image folder: DIR/<class>/<image>")
    src.add_argument("--dataset", choices=["digits"], help="built-in dataset (no download)")
    p.add_argument("--epochs", type=int, help="total epochs (default: see below)")
    p.add_argument("--batch-size", type=int, help="images per step (per process under torchrun)")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help="default adam")
    p.add_argument(
        "--weight-decay", type=float, help="default 5e-4 for sgd, 0 for adam, 1e-2 for adamw"
    )
    p.add_argument(
        "--augment",
        type=int,
        metavar="PIXELS",
        help="shift training images randomly by up to PIXELS (default 2 for digits, 0 otherwise)",
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="learning rate over epochs (default cosine, down to lr/100)",
    )
    p.add_argument(
        "--image-size", type=int, help="input n_H = n_W (default: the model's, e.g. 32 for lenet5)"
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=0.2,
        help="fraction of each class of --data held out for validation (default 0.2; "
        "digits always use their fixed 20%% test split)",
    )
    p.add_argument(
        "--weights",
        metavar="CKPT",
        help="start from this checkpoint (a cnnkit checkpoint, a published file or name); "
        "the classifier head is replaced when the class count differs",
    )
    p.add_argument("--out", default="checkpoint.pt", help="checkpoint file (default checkpoint.pt)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and split (0)")
    p.add_argument(
        "--engine",
        choices=["torch", "numpy"],
        default="torch",
        help="torch (default) or numpy (LeNet-5 only, on cnnkit.conv's NumPy layers)",
    )
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="default auto")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (0)")
    p.add_argument(
        "--residual",
        choices=["yes", "no"],
        help="ResNets only: 'no' builds the plain network of the same depth",
    )
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "predict",
        help="top-k classes of images with a trained checkpoint",
        description="Classify image files with a checkpoint written by `cnnkit train`.",
        epilog=PREDICT_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--model", help="model name (checked against the checkpoint)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="checkpoint from cnnkit train")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    p.set_defaults(func=run_predict)

    p = sub.add_parser(
        "evaluate",
        help="accuracy and confusion matrix of a trained checkpoint",
        description="Evaluate a `cnnkit train` checkpoint on an image folder (every readable "
        "image) or on the digits test split; print accuracy and the confusion matrix.",
        epilog=EVALUATE_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("--model", help="model name (checked against the checkpoint)")
    p.add_argument("--weights", required=True, metavar="CKPT", help="checkpoint from cnnkit train")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="image folder: DIR/<class>/<image>")
    src.add_argument("--dataset", choices=["digits"], help="the digits' fixed test split")
    p.add_argument("--confusion", metavar="PNG", help="also write the confusion matrix as a PNG")
    p.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from cnnkit.io import check_writable
    from cnnkit.train import TrainConfig, train

    if args.out:
        check_writable(args.out)  # fail now, not after the training
    kwargs = {}
    if args.residual is not None:
        kwargs["residual"] = args.residual == "yes"
    cfg = TrainConfig(
        model=args.model,
        data=args.data,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        augment=args.augment,
        schedule=args.schedule,
        image_size=args.image_size,
        val_split=args.val_split,
        weights=args.weights,
        out=args.out,
        resume=args.resume,
        seed=args.seed,
        engine=args.engine,
        device=args.device,
        workers=args.workers,
        model_kwargs=kwargs,
    )
    result = train(cfg)
    if not result.is_main:
        return 130 if result.interrupted else 0
    final = result.final
    if final:
        line = f"{args.model}: {result.epochs_done} epoch(s), train acc {final['acc']:.2%}"
        if "val_acc" in final:
            name = "test" if args.dataset else "val"
            line += f", {name} acc {final['val_acc']:.2%}"
        if result.checkpoint:
            line += f"; checkpoint {result.checkpoint}"
        print(line)
    if result.interrupted:
        print("interrupted; checkpoint saved" if result.checkpoint else "interrupted")
        return 130
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError, ImageReadError
    from cnnkit.io import list_images
    from cnnkit.train.evaluate import load_trained, predict_files

    if args.top_k < 1:
        raise CnnkitError(f"--top-k must be at least 1, got {args.top_k}")
    loaded = load_trained(args.weights, args.model)
    paths = [Path(p) for p in list_images(args.images)]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file", "rank", "class", "probability"])
    failed: list[Path] = []
    for path in paths:  # one unreadable file must not cost the others their predictions
        try:
            rows = predict_files(loaded, [path], top_k=args.top_k)
        except ImageReadError as exc:
            print(f"warning: {exc.message}; skipped", file=sys.stderr)
            failed.append(path)
            continue
        except OSError as exc:
            print(f"warning: {path}: cannot read ({exc.strerror or exc}); skipped", file=sys.stderr)
            failed.append(path)
            continue
        for row_path, rank, cls, prob in rows:
            writer.writerow([str(row_path), rank, cls, f"{prob:.6f}"])
        sys.stdout.flush()
    if failed:
        print(
            f"error: {len(failed)} of {len(paths)} file(s) could not be read: "
            + ", ".join(show_path(p) for p in failed[:5])
            + (f" and {len(failed) - 5} more (see the warnings above)" if len(failed) > 5 else ""),
            file=sys.stderr,
        )
        return 2
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from cnnkit.io import check_writable
    from cnnkit.train.evaluate import evaluate_model, format_confusion, load_trained, plot_confusion

    if args.confusion:
        check_writable(args.confusion)
    loaded = load_trained(args.weights, args.model)
    ev = evaluate_model(loaded, data=args.data, dataset=args.dataset)
    print(f"accuracy {ev.accuracy:.4f} ({int(round(ev.accuracy * ev.n))}/{ev.n})")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(ev.confusion, ev.classes))
    if args.confusion:
        title = f"{loaded.name}: accuracy {ev.accuracy:.2%} on {ev.n} images"
        plot_confusion(ev.confusion, ev.classes, args.confusion, title=title)
        print(f"wrote {args.confusion}")
    return 0
