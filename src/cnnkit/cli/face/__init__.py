"""``cnnkit face ...``: enroll, verify, identify, manage the person database, calibrate, evaluate,
and train the encoder with the triplet loss.

One module per group of subcommands, each a thin adapter over :mod:`cnnkit.face.usecases`:
:mod:`.recognition` (enroll, verify, identify, detect), :mod:`.database` (list, remove, rename,
export, import), :mod:`.pairs` (calibrate, evaluate, train), :mod:`.openset`
(evaluate-identification, info).
"""

from __future__ import annotations

import argparse

from cnnkit.cli.face import database, openset, pairs, recognition

_EPILOG = """\
The person database is an SQLite file (--db, default: faces.sqlite3 in the user data folder,
or $CNNKIT_FACE_DB). It remembers which encoder made its descriptors and refuses another one.
Two photos show the same person when the distance between their 128-d descriptors is at most
the tolerance tau: --tolerance, else the tau stored by `calibrate`, else 0.6 (dlib's).

Examples:
  cnnkit face enroll Ada ada1.jpg ada2.jpg        # one photo is enough; more help
  cnnkit face verify door.jpg --as Ada            # 'match 0.31' (exit 0) or 'no-match 0.74' (1)
  cnnkit face identify party/ > who.csv           # every face of every image
  cnnkit face identify party/ --detector cnn --precision auto   # turned faces; fastest encoder
  cnnkit face list
  cnnkit face calibrate --pairs pairs.txt --images lfw/   # choose tau, store it
  cnnkit face evaluate --pairs pairs.txt --images lfw/ --roc roc.png
  cnnkit face evaluate-identification --images lfw/ --det det.png   # open-set 1:N
  cnnkit face calibrate --for identification --fpir 0.001 --images lfw/  # tau for identify
  cnnkit face info                                # encoder, pipeline, taus, counts
  cnnkit face train --data people/ --out model.pt --epochs 5
  cnnkit face verify door.jpg --as Ada --model model.pt --db tuned.sqlite3
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cnnkit face`` and its subcommands to the ``cnnkit`` parser."""
    face = sub.add_parser(
        "face",
        help="face verification and recognition with a person database",
        description="Face verification (is this Ada?) and recognition (who is this?) with "
        "dlib's face ResNet in PyTorch, a person database, and triplet-loss training.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fsub = face.add_subparsers(dest="face_command", metavar="SUBCOMMAND")
    face.set_defaults(func=lambda args: (face.print_help(), 2)[1])
    recognition.register(fsub)
    database.register(fsub)
    pairs.register(fsub)
    openset.register(fsub)
