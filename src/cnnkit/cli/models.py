"""``cnnkit summary`` (the layer table of a network) and ``cnnkit models`` (what can be built)."""

from __future__ import annotations

import argparse
import json

from cnnkit.errors import shorten


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--num-classes``, ``--in-channels``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number >= 1, got {shorten(text)}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``summary`` and ``models`` to the ``cnnkit`` parser."""
    p = sub.add_parser(
        "summary",
        help="layer table of a network: shapes, parameters, multiply-adds",
        description=(
            "Print the layer table of a registered network, as in the notes: one row per layer "
            "with its output n_H x n_W x n_C, its parameters and its multiply-adds per image, "
            "and the totals at the bottom. Nothing is allocated: the model is built on PyTorch's "
            "meta device, so even VGG-19 takes seconds and no memory. Parameter-free elementwise "
            "layers (ReLU, dropout) are left out unless --all is given."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  cnnkit summary vgg16                    # 138,357,544 parameters, 15.47 GMACs\n"
        "  cnnkit summary resnet50 --input 3x160x160\n"
        "  cnnkit summary resnet34 --plain         # the plain 34-layer net (no shortcuts)\n"
        "  cnnkit summary lenet5                   # default input 1x32x32\n"
        "  cnnkit summary alexnet2012 --json | python -m json.tool\n"
        "  cnnkit models                           # every name you can use",
    )
    p.add_argument("model", metavar="MODEL", help="registered model name (see `cnnkit models`)")
    p.add_argument(
        "--input",
        metavar="CxHxW",
        default=None,
        help="input size of one image: CxHxW (3x224x224), HxW (224x224) or N (224 = NxN); a "
        "C other than the model's builds the model for C channels (default: the size the "
        "network was designed for: 3x224x224; 1x32x32 for lenet5; 3x227x227 for alexnet2012; "
        "3x32x32 for the CIFAR ResNets)",
    )
    p.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        metavar="N",
        help="classes of the last layer (default: 1000, or 10 for lenet5 and CIFAR ResNets)",
    )
    p.add_argument(
        "--in-channels",
        type=positive_int,
        default=None,
        metavar="C",
        help="input channels (default: the C of --input, else 3; 1 for lenet5)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--residual",
        dest="residual",
        action="store_true",
        default=None,
        help="ResNets: with shortcuts (the default)",
    )
    group.add_argument(
        "--plain",
        dest="residual",
        action="store_false",
        help="ResNets: the plain network of the same depth, without shortcuts",
    )
    p.add_argument("--all", action="store_true", help="also list ReLU/dropout rows")
    p.add_argument("--json", action="store_true", help="print JSON (rows and totals) for tools")
    p.set_defaults(func=run_summary)

    m = sub.add_parser(
        "models",
        help="list the networks cnnkit can build",
        description=(
            "List the registered networks with their parameter count (at the default number of "
            "classes), their default input size and the file name of their published ImageNet "
            "checkpoint, if any (looked up in $TORCH_HOME/hub/checkpoints, never downloaded "
            "unless asked)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  cnnkit models\n  cnnkit models 'resnet*'\n  cnnkit models --json",
    )
    m.add_argument("pattern", nargs="?", default="*", help="shell-style filter (default '*')")
    m.add_argument("--json", action="store_true", help="print JSON for tools")
    m.set_defaults(func=run_models)


def run_summary(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError
    from cnnkit.models.registry import model_info
    from cnnkit.models.summary import parse_input_size, summarize_model

    info = model_info(args.model)
    kwargs: dict[str, object] = {}
    if args.residual is not None:
        if info.builder.__module__ != "cnnkit.models.resnet":
            raise CnnkitError(
                f"--residual/--plain apply to ResNets only, not {args.model}",
                hint="see `cnnkit models 'resnet*'`",
            )
        kwargs["residual"] = args.residual
    if args.in_channels is not None:
        kwargs["in_channels"] = args.in_channels
    input_size = None
    if args.input is not None:
        channels = args.in_channels or info.input_size[0]
        input_size = parse_input_size(args.input, default_channels=channels)
        if args.in_channels is None and input_size[0] != info.input_size[0]:
            kwargs["in_channels"] = input_size[0]  # --input 1x224x224: a 1-channel model
        elif args.in_channels is not None and input_size[0] != args.in_channels:
            raise CnnkitError(
                f"--input {args.input} has n_C = {input_size[0]} but --in-channels is "
                f"{args.in_channels}",
                hint="give one of them, or make them agree",
            )
    summary = summarize_model(
        info.name, input_size, num_classes=args.num_classes, all_layers=args.all, **kwargs
    )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=1))
    else:
        print(summary.format_table())
    return 0


def run_models(args: argparse.Namespace) -> int:
    import torch

    from cnnkit.errors import NotFoundError
    from cnnkit.models.registry import create_model, list_models, model_info
    from cnnkit.models.weights import get_record

    names = list_models(args.pattern)
    if not names:
        raise NotFoundError(
            f"no model matches {shorten(args.pattern, 200)}", hint="cnnkit models lists them all"
        )
    rows = []
    for name in names:
        info = model_info(name)
        with torch.device("meta"):
            model = create_model(name)
        record = get_record(name)
        rows.append(
            {
                "name": name,
                "params": sum(p.numel() for p in model.parameters()),
                "num_classes": info.default_num_classes,
                "input_size": list(info.input_size),
                "weights": record.file if record else None,
                "description": info.summary,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = ("name", "parameters", "input", "checkpoint", "description")
    body = [
        (
            r["name"],
            f"{r['params']:,}",
            "x".join(str(d) for d in r["input_size"]),
            r["weights"] or "-",
            r["description"],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(4)]
    for row in [head, *body]:
        cells = [
            str(row[0]).ljust(widths[0]),
            str(row[1]).rjust(widths[1]),
            str(row[2]).ljust(widths[2]),
            str(row[3]).ljust(widths[3]),
            str(row[4]),
        ]
        print("  ".join(cells).rstrip())
    return 0
