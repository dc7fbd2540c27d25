"""``cnnkit edges``: an edge map of an image file, written as a PNG."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

KERNELS = ("vertical", "horizontal", "sobel", "scharr", "prewitt", "laplacian")

_EPILOG = """\
What you get:
  sobel, scharr, prewitt  gradient magnitude sqrt(gx^2 + gy^2): white edges on black
  vertical, horizontal    signed response of the course's [[1,0,-1]]*3 detector (or its
                          transpose): red where the left/top side is brighter, blue where the
                          right/bottom side is, white where flat
  laplacian               signed second derivative (red on the dark side of an edge)
  --threshold T           a black and white map: white where |response| >= T

Threshold units, for an image read as [0, 1]: a step of height h across an edge gives
3h (vertical, horizontal, prewitt), 4h (sobel), 16h (scharr), h (laplacian).

Examples:
  cnnkit edges photo.jpg                       # writes ./photo-edges-sobel.png
  cnnkit edges photo.jpg --kernel vertical -o vertical.png
  cnnkit edges photo.jpg --kernel sobel --threshold 0.5 -o edges-bw.png
  cnnkit edges photo.jpg -o out/               # writes out/photo-edges-sobel.png
  cnnkit edges photo.jpg --learn-from photo-edges-sobel.png
                                               # learn the 3x3 filter that makes that map
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cnnkit edges`` to the ``cnnkit`` parser."""
    p = sub.add_parser(
        "edges",
        help="detect edges in an image (Sobel, Scharr, vertical, ...)",
        description=(
            "Convolve an image (converted to grayscale, ITU-R 601 luma) with an edge kernel\n"
            "using cnnkit's NumPy convolution (cnnkit.conv.conv2d) and write the edge map as a\n"
            "PNG. The output has the size of the input ('same' padding, border pixels repeated)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="input image (JPEG, PNG, BMP, GIF, TIFF, WebP)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.png",
        default=None,
        help="output file, PNG unless its suffix names another format (.jpg, .tif, ...), or an "
        "existing folder to write into (default: IMAGE-edges-KERNEL.png in the current folder, "
        "IMAGE being the file's stem)",
    )
    p.add_argument(
        "-k",
        "--kernel",
        choices=KERNELS,
        default="sobel",
        metavar="KERNEL",
        help=f"edge kernel: {', '.join(KERNELS)} (default: sobel)",
    )
    p.add_argument(
        "-t",
        "--threshold",
        type=float,
        metavar="T",
        default=None,
        help="write a binary map, white where |response| >= T (default: no threshold; "
        "see the units below)",
    )
    p.add_argument(
        "--learn-from",
        metavar="TARGET.png",
        default=None,
        help="instead of applying a kernel, learn the 3x3 filter (and bias) that turns IMAGE into "
        "this edge map (same size as IMAGE, or 2 pixels smaller each way) by gradient descent, "
        "print its nine numbers, and write its map to -o if given",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=300,
        metavar="N",
        help="gradient-descent steps for --learn-from (default: 300)",
    )
    p.set_defaults(func=run)


def run_learn(args: argparse.Namespace) -> int:
    """``--learn-from``: fit the filter with :func:`cnnkit.edges.learn_kernel`, print it."""
    from cnnkit.edges import filter_image, learn_kernel, to_display, to_grayscale
    from cnnkit.errors import CnnkitError
    from cnnkit.io import load_image, save_image
    from cnnkit.progress import progress

    if args.steps < 1:
        raise CnnkitError(f"--steps must be at least 1, got {args.steps}", hint="e.g. --steps 300")
    gray = to_grayscale(load_image(Path(args.image))).astype("float64")
    target = to_grayscale(load_image(Path(args.learn_from))).astype("float64")
    padding: Literal["same", "valid"] = "same" if target.shape == gray.shape else "valid"
    with progress(total=args.steps, desc="learn", unit="step") as bar:

        def on_step(step: int, loss: float, kernel, bias) -> None:
            bar.update(1)
            bar.set_postfix(J=f"{loss:.3g}")

        learned = learn_kernel(gray, target, padding=padding, steps=args.steps, callback=on_step)
    print("kernel:")
    for row in learned.kernel:
        print("  " + " ".join(f"{v:10.5f}" for v in row))
    print(f"bias: {learned.bias:.5f}")
    print(f"J: {learned.losses[0]:.4g} -> {learned.losses[-1]:.4g} in {learned.steps} steps")
    if args.output is not None:
        response = filter_image(gray, learned.kernel[None], padding)[0] + learned.bias
        save_image(Path(args.output), to_display(response, signed=True))
        print(args.output)
    return 0


def default_output(image: Path, kernel: str, folder: Path | None = None) -> Path:
    """``<folder or cwd>/<stem>-edges-<kernel>.png``."""
    return (folder if folder is not None else Path.cwd()) / f"{image.stem}-edges-{kernel}.png"


def run(args: argparse.Namespace) -> int:
    from cnnkit.edges import detect, is_signed, to_display
    from cnnkit.errors import CnnkitError
    from cnnkit.io import load_image, save_image

    if getattr(args, "learn_from", None):
        return run_learn(args)
    image_path = Path(args.image)
    if args.threshold is not None and not args.threshold >= 0:
        raise CnnkitError(
            f"--threshold must be a number >= 0, got {args.threshold}",
            hint="for example --threshold 0.5",
        )
    if args.output is None:
        out = default_output(image_path, args.kernel)
    elif Path(args.output).is_dir():
        out = default_output(image_path, args.kernel, Path(args.output))
    else:
        out = Path(args.output)

    image = load_image(image_path)  # (H, W, 3) float32 in [0, 1]; ImageReadError if unreadable
    response = detect(image, args.kernel, threshold=args.threshold)
    picture = to_display(response, signed=is_signed(args.kernel))
    save_image(out, picture)  # PNG unless the suffix names another format; OutputError if not
    log.info(
        "%s: %s edges of a %dx%d image%s",
        out,
        args.kernel,
        image.shape[1],
        image.shape[0],
        "" if args.threshold is None else f", threshold {args.threshold:g}",
    )
    print(out)
    return 0
