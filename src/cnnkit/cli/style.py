"""`cnnkit style CONTENT STYLE [STYLE...] -o OUT.png`: neural style transfer.

Option names follow neural-style (jcjohnson) where it has them. The command only parses the
arguments, calls :func:`cnnkit.style.transfer` and writes the image(s).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cnnkit.errors import shorten

log = logging.getLogger(__name__)

EPILOG = """\
Examples:
  cnnkit style photo.jpg starry.jpg -o out.png
  cnnkit style photo.jpg a.jpg b.jpg --style-blend-weights 3,1 -o blend.png
  cnnkit style photo.jpg style.jpg --preserve-colors --size 768 --multiscale -o out.png
  cnnkit style photo.jpg style.jpg --optimizer adam --lr 0.02 --iterations 500 -o out.png
  cnnkit style photo.jpg style.jpg --save-every 50 --loss-plot loss.png -o out.png

Backbone: --weights PATH, else the torch hub cache file vgg19-dcbb9e9d.pth, else (with
--download) a download; without ImageNet weights cnnkit uses its offline default, a random-weight
VGG-19 from a fixed seed, normalised on the content image (a notice says how to get the better
weights). Ctrl-C stops early and still writes the current image.
More: docs/style.md.
"""


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {shorten(text)}"
        ) from exc


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"no layer name in {shorten(text)}: give comma-separated names, e.g. "
            "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 (valid: conv1_1..conv5_4, "
            "relu1_1..relu5_4, pool1..pool5)"
        )
    return names


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cnnkit style`` to the ``cnnkit`` parser."""
    p = sub.add_parser(
        "style",
        help="paint a photo in the style of others (neural style transfer)",
        description="Neural style transfer (Gatys et al.): minimise J(G) = alpha J_content(C, G)"
        " + beta J_style(S, G) over the pixels of G, with the costs of the course notes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("content", type=Path, help="the content image C")
    p.add_argument("styles", type=Path, nargs="+", metavar="style", help="style image(s) S")
    p.add_argument("-o", "--output", type=Path, default=Path("out.png"), help="default out.png")
    g = p.add_argument_group("size and optimisation")
    g.add_argument(
        "--size", type=int, default=512, metavar="PX", help="longest side of the output (512)"
    )
    g.add_argument(
        "--style-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="style images' longest side = X * --size (1.0)",
    )
    g.add_argument(
        "--iterations", type=int, default=300, metavar="N", help="function evaluations (300)"
    )
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="(lbfgs)")
    g.add_argument("--lr", type=float, default=None, help="step size (1.0 L-BFGS, 0.02 Adam)")
    g.add_argument("--multiscale", action="store_true", help="optimise at size/2, then at size")
    g.add_argument("--seed", type=int, default=0, help="seed of the noise init (0)")
    g.add_argument(
        "--init",
        choices=("noise", "content", "content+noise"),
        default="content",
        help="start from noise, the content image (default) or a 60/40 noise/content mix",
    )
    g.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 autocast where the CPU/GPU supports it, else fp32",
    )
    w = p.add_argument_group("costs")
    w.add_argument("--alpha", type=float, default=1.0, help="content weight (1)")
    w.add_argument("--beta", type=float, default=10.0, help="style weight (10)")
    w.add_argument(
        "--content-layer",
        default="conv4_2",
        metavar="NAME",
        help="content layer (conv4_2); names: conv1_1..conv5_4, relu1_1..relu5_4, pool1..pool5",
    )
    w.add_argument(
        "--style-layers",
        type=_names,
        default=None,
        metavar="NAMES",
        help="comma-separated (conv1_1,conv2_1,conv3_1,conv4_1,conv5_1)",
    )
    w.add_argument(
        "--style-layer-weights",
        type=_floats,
        default=None,
        metavar="W,W,...",
        help="lambda per style layer (1/L each)",
    )
    w.add_argument(
        "--style-blend-weights",
        type=_floats,
        default=None,
        metavar="W,W,...",
        help="one per style image (equal)",
    )
    w.add_argument("--tv-weight", type=float, default=0.0, help="total-variation weight (0)")
    w.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="use the notes' raw costs (default: each divided by its value for a blank image, "
        "so alpha and beta mean the same for every backbone)",
    )
    w.add_argument(
        "--preserve-colors",
        action="store_true",
        help="transfer luminance only and keep the content's colours",
    )
    b = p.add_argument_group("backbone")
    b.add_argument(
        "--backbone",
        choices=("auto", "vgg19", "random-vgg19"),
        default="auto",
        help="auto: ImageNet VGG-19 when its weights are found, else random-vgg19",
    )
    b.add_argument("--weights", type=Path, default=None, help="VGG-19 checkpoint file (.pth)")
    b.add_argument(
        "--download", action="store_true", help="allow downloading vgg19-dcbb9e9d.pth (548 MB)"
    )
    b.add_argument(
        "--pooling", choices=("max", "avg"), default=None, help="(max ImageNet, avg random)"
    )
    b.add_argument(
        "--normalize-on",
        choices=("content", "content+style"),
        default="content+style",
        help="random-vgg19: images on which each conv is rescaled to unit variance (content+style)",
    )
    b.add_argument(
        "--per-layer",
        dest="per_channel",
        action="store_false",
        help="random-vgg19: one scale per layer instead of per channel",
    )
    o = p.add_argument_group("outputs")
    o.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="write OUT-<iteration>.png every N iterations",
    )
    o.add_argument(
        "--loss-plot", type=Path, default=None, metavar="PNG", help="write the loss curves here"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.io import check_writable, save_image
    from cnnkit.style.transfer import DEFAULT_STYLE_LAYERS, StyleConfig, transfer

    config = StyleConfig(
        size=args.size,
        style_scale=args.style_scale,
        iterations=args.iterations,
        optimizer=args.optimizer,
        lr=args.lr,
        alpha=args.alpha,
        beta=args.beta,
        content_layer=args.content_layer,
        style_layers=tuple(args.style_layers or DEFAULT_STYLE_LAYERS),
        style_layer_weights=args.style_layer_weights,
        style_blend_weights=args.style_blend_weights,
        tv_weight=args.tv_weight,
        init=args.init,
        preserve_colors=args.preserve_colors,
        multiscale=args.multiscale,
        seed=args.seed,
        save_every=args.save_every,
        backbone=args.backbone,
        weights=args.weights,
        download=args.download,
        normalize=args.normalize,
        pooling=args.pooling,
        normalize_on=args.normalize_on,
        per_channel=args.per_channel,
        device=args.device,
        precision=args.precision,
    )
    out: Path = args.output
    for path in (out, args.loss_plot):
        if path is not None:
            check_writable(path)  # fail now, not after the optimisation

    def snapshot(iteration: int, image) -> None:  # noqa: ANN001
        save_image(out.with_name(f"{out.stem}-{iteration:04d}{out.suffix or '.png'}"), image)

    from cnnkit.errors import CnnkitError

    try:
        image, history = transfer(args.content, args.styles, config, on_snapshot=snapshot)
    except ValueError as exc:  # bad option values
        if isinstance(exc, CnnkitError):
            raise
        raise CnnkitError(str(exc), hint="see cnnkit style --help") from exc
    save_image(out, image)
    if args.loss_plot is not None and history.total:
        history.plot(args.loss_plot)
    if history.interrupted:
        print(f"interrupted after {len(history.total)} iterations; wrote {out}", file=sys.stderr)
        return 130
    final = f"J={history.total[-1]:.4g}" if history.total else "no iterations"
    log.info(
        "wrote %s (%s, %d iterations in %.1f s, %s backbone)",
        out,
        final,
        len(history.total),
        history.seconds,
        history.backbone,
    )
    return 0
