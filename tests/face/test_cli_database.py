"""`cnnkit face` database defects: read-only folders and files, error lines with what to do,
long names echoed short, --help examples, and the same photo enrolled under two names.

Read-only behaviour is checked for real: root ignores permission bits, so as root the command
runs as the unprivileged user 65534 (util-linux ``setpriv``); as any other user, ``chmod`` is
enough.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli.main import main
from cnnkit.face.gallery import Gallery
from tests.face.shipped import write_photos

SRC = Path(__file__).resolve().parents[2] / "src"
UP = ["--upsample", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the unprivileged user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cnnkit-ro-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(path)


def run_unprivileged(*argv: str) -> subprocess.CompletedProcess:
    """``cnnkit face ARGV`` in a process that file permissions really apply to."""
    cmd = [sys.executable, "-m", "cnnkit.cli.main", "face", *argv]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def make_readonly_db(folder: Path, photo: Path) -> Path:
    """A database with Grace enrolled, then its file and folder made read-only."""
    db = folder / "ro" / "a.db"
    db.parent.mkdir()
    assert main(["face", "enroll", "Grace", str(photo), "--db", str(db), *UP]) == 0
    assert not Path(f"{db}-wal").exists()  # closed cleanly: only the file itself
    db.chmod(0o444)
    db.parent.chmod(0o555)
    return db


def test_readonly_folder_can_be_read_but_not_written(shared_dir: Path, photos, capsys) -> None:
    db = make_readonly_db(shared_dir, photos["grace"])
    probe = run_unprivileged("rename", "Grace", "G", "--db", str(db))
    assert probe.returncode == 2, probe  # the permissions really apply to this process
    capsys.readouterr()

    listed = run_unprivileged("list", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == "name,photos,enrolled"
    assert listed.stdout.splitlines()[1].startswith("Grace,1,")
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    exported = run_unprivileged("export", str(out / "e.npz"), "--db", str(db))
    assert exported.returncode == 0, exported.stderr

    for argv in (["remove", "Grace"], ["rename", "Grace", "Ada"]):
        r = run_unprivileged(*argv, "--db", str(db))
        assert r.returncode == 2 and r.stdout == ""
        line = r.stderr.strip()
        assert line.startswith(f"error: {db}: ") and "read-only" in line, line
        assert line.endswith(")") and "--db" in line and "\n" not in line, line
    r = run_unprivileged("enroll", "Ada", str(photos["astro"]), "--db", str(db), *UP)
    assert r.returncode == 2 and "read-only" in r.stderr and r.stderr.strip().endswith(")")

    new = db.parent / "new.db"
    r = run_unprivileged("enroll", "Ada", str(photos["astro"]), "--db", str(new), *UP)
    assert r.returncode == 2 and not new.exists()
    assert r.stderr.strip() == (
        f"error: {new}: cannot create a database here: the folder is read-only "
        "(pass a --db in a folder you can write)"
    )
    with Gallery(db, readonly=True) as g:  # unchanged
        assert [p.name for p in g.persons()] == ["Grace"]
        assert stat.S_IMODE(db.stat().st_mode) == 0o444


def test_db_that_is_a_folder_says_what_to_do(tmp_path: Path, capsys) -> None:
    for argv in (["list"], ["remove", "Ada"]):
        assert main(["face", *argv, "--db", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"error: {tmp_path}: is a folder, not a database file "
            f"(pass a file, e.g. --db {tmp_path / 'faces.sqlite3'})"
        )


def test_long_name_is_echoed_short(tmp_path: Path, photos, capsys) -> None:
    name = "A" * 100_000
    db = tmp_path / "a.db"
    assert main(["face", "enroll", name, str(photos["grace"]), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert len(err) < 300 and "(100000 characters)" in err and "AAAA…" in err
    assert err.startswith("error: invalid person name ") and not db.exists()
    with Gallery(db) as g:
        g.add("Bo", np.ones((1, 4), np.float32), model_id="m")
    for argv in (["remove", name], ["rename", "Bo", name], ["rename", name, "X"]):
        assert main(["face", *argv, "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert len(err) < 300 and err.startswith("error: ") and err.strip().endswith(")"), err


@pytest.mark.parametrize("command", ["list", "remove", "rename"])
def test_help_has_examples(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["face", command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    examples = out.split("Examples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  cnnkit face {command}") for line in examples)


def test_same_photo_under_another_name_warns(tmp_path: Path, photos, capsys) -> None:
    db = tmp_path / "a.db"
    assert main(["face", "enroll", "Grace", str(photos["grace"]), "--db", str(db), *UP]) == 0
    capsys.readouterr()
    assert (
        main(["face", "enroll", "Amazing Grace", str(photos["grace"]), "--db", str(db), *UP]) == 0
    )
    out, err = capsys.readouterr()
    assert f"warning: {photos['grace']} is already enrolled for Grace;" in err
    assert "enrolled Amazing Grace:" in out
    # a different photo of the same person: no warning
    assert main(["face", "enroll", "Grace", str(photos["grace_flip"]), "--db", str(db), *UP]) == 0
    assert "already enrolled" not in capsys.readouterr().err
