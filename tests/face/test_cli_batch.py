"""`cnnkit face detect/identify/verify` on batches with bad files, faceless images and several
faces; --tolerance must be a positive number."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from cnnkit.cli.main import main
from cnnkit.io import sample_path
from tests.face.shipped import write_photos

UP = ["--upsample", "0"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    paths = write_photos(tmp_path_factory.mktemp("photos"))
    zero = paths["grace"].parent / "zero.jpg"
    zero.write_bytes(b"")
    paths["zero"] = zero
    paths["coffee"] = paths["grace"].parent / "coffee.png"
    shutil.copy(sample_path("coffee"), paths["coffee"])
    return paths


@pytest.fixture(scope="module")
def db(tmp_path_factory, photos) -> Path:
    path = tmp_path_factory.mktemp("db") / "faces.sqlite3"
    assert main(["face", "enroll", "Grace", str(photos["grace"]), "--db", str(path), *UP]) == 0
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["face", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def batch(photos) -> list[str]:
    """Good, empty, good, corrupt, faceless, faceless, good: the bad ones in the middle."""
    names = ["grace", "zero", "grace_flip", "corrupt", "noface", "coffee", "astro"]
    return [str(photos[n]) for n in names]


def check_stderr(err: str, photos) -> None:
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert str(photos["zero"]) in warnings[0] and str(photos["corrupt"]) in warnings[1]
    for name in ("noface", "coffee"):
        assert f"{photos[name]}: no face found" in err.splitlines()
    assert "error: 2 of 7 file(s) could not be read" in err and "Traceback" not in err


def test_detect_continues_past_bad_files(photos, capsys) -> None:
    code, out, err = run(capsys, "detect", *batch(photos), *UP)
    assert code == 2
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["file", "top", "right", "bottom", "left"]
    assert [Path(r[0]).stem for r in rows[1:]] == ["grace", "grace_flip", "astro"]
    check_stderr(err, photos)


def test_identify_continues_past_bad_files(db: Path, photos, capsys) -> None:
    code, out, err = run(
        capsys, "identify", *batch(photos), "--db", str(db), "--batch-size", "1", *UP
    )
    assert code == 2
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(Path(r["file"]).stem, r["name"]) for r in rows] == [
        ("grace", "Grace"),
        ("grace_flip", "Grace"),
        ("astro", "unknown"),
    ]
    check_stderr(err, photos)


def test_faceless_image_alone_exits_0_with_a_notice(db: Path, photos, capsys) -> None:
    code, out, err = run(capsys, "identify", str(photos["coffee"]), "--db", str(db), *UP)
    assert code == 0 and out.splitlines() == ["file,top,right,bottom,left,name,distance"]
    assert err.splitlines() == [f"{photos['coffee']}: no face found"]


def test_verify_with_several_faces_says_which_is_used(db: Path, photos, capsys) -> None:
    code, out, err = run(
        capsys, "verify", str(photos["two"]), "--as", "Grace", "--db", str(db), *UP
    )
    assert code in (0, 1) and re.fullmatch(r"(match|no-match) \d+\.\d{4}\n", out)
    notice = re.fullmatch(
        re.escape(str(photos["two"])) + r": (\d+) faces found, using the largest\n", err
    )
    assert notice is not None and int(notice.group(1)) >= 2
    code, out, err = run(
        capsys, "verify", str(photos["grace"]), "--as", "Grace", "--db", str(db), *UP
    )
    assert code == 0 and out.startswith("match ") and "faces found" not in err


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "abc"])
def test_tolerance_must_be_positive(db: Path, photos, tmp_path: Path, value: str, capsys) -> None:
    grace = str(photos["grace"])
    commands = [
        ["verify", grace, "--as", "Grace", "--db", str(db)],
        ["identify", grace, "--db", str(db)],
        ["enroll", "Ada", grace, "--db", str(tmp_path / "new.sqlite3")],
        ["evaluate", "--pairs", "p.txt", "--images", str(tmp_path)],
    ]
    for argv in commands:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["face", *argv, "--tolerance", value])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--tolerance" in err and ("positive" in err or "expected a number" in err)
    assert not (tmp_path / "new.sqlite3").exists()
