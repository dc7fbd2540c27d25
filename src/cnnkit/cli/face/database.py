"""``cnnkit face list | remove | rename | export | import``: the database verbs."""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

from cnnkit.cli.face.common import db_opts, gallery, parser

log = logging.getLogger(__name__)


def register(fsub: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to ``cnnkit face``."""
    p = parser(
        fsub,
        "list",
        "list enrolled persons (CSV: name,photos,enrolled)",
        "A summary line (persons, photos, encoder, tau, file) goes to stderr. The database is\n"
        "opened read-only, so a file in a read-only folder can be listed.\n\n"
        "Examples:\n  cnnkit face list\n  cnnkit face list --db team.sqlite3 > persons.csv",
    )
    db_opts(p)
    p.set_defaults(func=run_list)

    p = parser(
        fsub,
        "remove",
        "remove a person and all their photos",
        "The person's descriptors are deleted in one transaction (the photos themselves were\n"
        "never stored).\n\nExamples:\n  cnnkit face remove Ada\n"
        "  cnnkit face remove 'Grace Hopper' --db team.sqlite3",
    )
    p.add_argument("name", metavar="NAME")
    db_opts(p)
    p.set_defaults(func=run_remove)

    p = parser(
        fsub,
        "rename",
        "rename a person",
        "The new name must be free; the photos stay enrolled.\n\nExamples:\n"
        "  cnnkit face rename Ada 'Ada Lovelace'\n  cnnkit face rename ada Ada --db team.sqlite3",
    )
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    db_opts(p)
    p.set_defaults(func=run_rename)

    p = parser(
        fsub,
        "export",
        "write the database to a portable .npz file",
        "The file holds names, descriptors, sources, hashes, the encoder id and tau; it is\n"
        "written atomically. Example:\n  cnnkit face export backup.npz",
    )
    p.add_argument("file", metavar="FILE", type=Path)
    db_opts(p)
    p.set_defaults(func=run_export)

    p = parser(
        fsub,
        "import",
        "merge an exported .npz file into the database (one transaction)",
        "Persons are matched by name; descriptors already present are skipped. A file made\n"
        "with another encoder is refused.\n\n"
        "Example:\n  cnnkit face import backup.npz --db new.sqlite3",
    )
    p.add_argument("file", metavar="FILE", type=Path)
    db_opts(p)
    p.set_defaults(func=run_import)


def run_list(args: argparse.Namespace) -> int:
    with gallery(args, readonly=True) as db:
        persons = db.persons()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["name", "photos", "enrolled"])
        for p in persons:
            writer.writerow([p.name, p.n_photos, p.created_at])
        tau = db.tau
        log.info(
            "%d person(s), %d photo(s); encoder %s; tau %s; %s",
            len(persons),
            sum(p.n_photos for p in persons),
            db.model_id or "(none yet)",
            f"{tau:.4f} (calibrated)" if tau is not None else "0.6 (default)",
            db.path,
        )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with gallery(args) as db:
        n = db.remove(args.name)
    print(f"removed {args.name.strip()} ({n} photo(s))")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    with gallery(args) as db:
        db.rename(args.old, args.new)
    print(f"renamed {args.old.strip()} to {args.new.strip()}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    with gallery(args, readonly=True) as db:
        n = db.export(args.file)
        persons = len(db.persons())
    print(f"exported {persons} person(s), {n} photo descriptor(s) to {args.file}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cnnkit.face import read_export

    read_export(args.file)  # a bad file fails before a database is created
    with gallery(args, create=True) as db:
        n = db.import_(args.file)
        persons = len(db.persons())
    print(f"imported {n} new descriptor(s); the database has {persons} person(s)")
    return 0
