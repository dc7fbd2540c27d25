"""``cnnkit demo``: an HTML report of every capability, on images that installed packages ship."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="build an HTML report of every capability on shipped images",
        description=(
            "Build demo-output/index.html (plus PNGs) showing each capability of cnnkit on images "
            "that installed packages ship (scikit-image, matplotlib, scikit-learn). Runs offline."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  cnnkit demo                            # every section into ./demo-output/index.html\n"
        "  cnnkit demo --out /tmp/report          # another folder\n"
        "  cnnkit demo --sections edges,models    # only some sections (seconds, not minutes)\n"
        "  cnnkit demo --sections face -q         # no progress bars",
    )
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument(
        "--sections",
        default=None,
        help="comma-separated subset of: edges, models, train, face, style (default: all)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.demo.report import build_report
    from cnnkit.errors import CnnkitError

    sections = None
    if args.sections is not None:
        sections = [name.strip() for name in args.sections.split(",") if name.strip()]
        if not sections:
            raise CnnkitError(
                "--sections is empty", hint="name some of: edges, models, train, face, style"
            )
    index = build_report(args.out, sections=sections)
    print(index)
    return 0
