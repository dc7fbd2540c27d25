"""Entry point of the ``cnnkit`` command.

Each command group lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` to a callable taking the parsed arguments and returning an exit code.
Heavy libraries (torch, dlib) are imported inside those callables, so ``cnnkit --help`` is fast.

Errors from the library (:class:`cnnkit.errors.CnnkitError`) print as ``error: <message>`` and
exit with their code (2 unless stated), and so do operating-system errors on files (a folder that
cannot be created, a full disk); ``--debug`` shows the traceback instead. ``--debug`` and
``--quiet`` work before or after the command.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cnnkit import __version__
from cnnkit.errors import CnnkitError, shorten, show_path
from cnnkit.progress import is_quiet, set_quiet

#: Command modules, in the order ``cnnkit --help`` lists them.
COMMAND_MODULES = (
    "cnnkit.cli.demo",
    "cnnkit.cli.edges",
    "cnnkit.cli.models",
    "cnnkit.cli.train",
    "cnnkit.cli.face",
    "cnnkit.cli.style",
    "cnnkit.cli.serve",
)


class CliParser(argparse.ArgumentParser):
    """The parser of ``cnnkit`` and of every command below it: usage errors are one line.

    ``error: argument -k/--kernel: invalid choice 'sobelx' (did you mean sobel?)`` on stderr and
    exit 2, like every other cnnkit error, instead of argparse's usage block plus a second line.
    Sub-commands inherit the class (``add_subparsers`` makes parsers of its parser's type).
    """

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is None or value in action.choices:
            return
        choices = [str(c) for c in action.choices]
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"did you mean {close[0]}?" if close else f"choose from {', '.join(choices)}"
        raise argparse.ArgumentError(action, f"invalid choice {shorten(value)} ({hint})")

    def error(self, message: str, prog: str | None = None) -> NoReturn:
        line = " ".join(message.split())  # one line, whatever argparse or a type function said
        if len(line) > 300:  # e.g. a pasted file given as arguments
            line = line[:299] + "…"
        if not line.endswith("?)") and "(choose from " not in line:
            line += f" (see {prog or self.prog} --help)"
        self.exit(2, f"error: {line}\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but leftover arguments name the command's help, not ``cnnkit``'s."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            prog = getattr(parsed, "cli_prog", self.prog)  # the deepest command's (set below)
            self.error(f"unrecognized arguments: {' '.join(extras)}", prog=prog)
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="cnnkit",
        description=(
            "Convolutional neural networks from the convolution up: edge detection, classic "
            "networks (LeNet-5, AlexNet, VGG, ResNet), face verification and recognition, and "
            "neural style transfer. Run `cnnkit COMMAND --help` for each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
        "  cnnkit demo --out demo-output        # report of every capability on shipped images\n"
        "  cnnkit edges photo.jpg -o edges.png  # Sobel edge magnitude\n"
        "  cnnkit summary vgg16                 # the layer table of VGG-16\n"
        "  cnnkit models 'resnet*'              # the networks cnnkit can build\n"
        "  cnnkit train lenet5 --dataset digits --out digits.pt  # train LeNet-5 on the digits\n"
        "  cnnkit predict --weights digits.pt photo.png          # top-5 classes\n"
        "  cnnkit evaluate --weights digits.pt --dataset digits  # accuracy, confusion matrix\n"
        "  cnnkit face enroll Ada ada.jpg       # one-shot enrollment\n"
        "  cnnkit style content.jpg style.jpg -o out.png\n"
        "  cnnkit serve                         # the HTTP API on http://127.0.0.1:8000",
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    _add_global_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command_parser in _all_subparsers(parser):
        # The global flags also work after the command (`cnnkit train ... -q`); SUPPRESS keeps
        # a flag given before the command from being reset by the subcommand's default.
        _add_global_flags(command_parser, default=argparse.SUPPRESS)
        command_parser.set_defaults(cli_prog=command_parser.prog)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show full tracebacks on errors"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="no progress bars or notices"
    )


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands, and sub-commands such as `face enroll`)."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found.append(child)
                found.extend(_all_subparsers(child))
    return found


#: Exit status after stdout was closed early (`cnnkit ... | head`): 128 + SIGPIPE, what a shell
#: reports for a Unix tool stopped by a closed pipe.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cnnkit ARGV``; return its exit status.

    A reader that leaves early (``cnnkit summary resnet152 | head -c 100``) ends the command
    quietly with :data:`EXIT_BROKEN_PIPE`, as in the Python docs' recipe: stdout is pointed at
    ``/dev/null`` so the interpreter's final flush cannot print "Exception ignored".
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # inside the try: a closed pipe shows here, not at shutdown
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE


def _stdout_to_devnull() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a replaced stdout (tests, embedding)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or not hasattr(args, "func"):
        parser.print_help()
        return 2
    set_quiet(args.quiet or is_quiet())
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except CnnkitError as exc:
        if args.debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        raise  # stdout closed by its reader: main() ends quietly
    except OSError as exc:
        # A file the command had to read or write (outside cnnkit.io's own checks).
        if args.debug:
            raise
        where = f"{show_path(exc.filename)}: " if exc.filename else ""
        print(
            f"error: {where}{exc.strerror or exc} (check the path and its permissions)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
