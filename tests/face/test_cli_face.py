"""`cnnkit face ...` end to end with the real pipeline (HOG, landmarks, dlib's ResNet in torch).

Photos are shipped ones (grace_hopper, astronaut) and transformed copies; every error path
checks the message, the exit code, and that the database did not change.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli.main import main
from cnnkit.face.gallery import Gallery
from tests.face.shipped import write_lfw_like, write_photos

UP = ["--upsample", "0"]  # the shipped faces are large: no upsampling, 4x faster


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture
def db(tmp_path: Path, photos) -> Path:
    """A database with Grace enrolled from one photo."""
    path = tmp_path / "faces.sqlite3"
    assert main(["face", "enroll", "Grace", str(photos["grace"]), "--db", str(path), *UP]) == 0
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["face", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def content(path: Path) -> list:
    with Gallery(path, create=False) as g:
        return g.dump()


def test_enroll_verify_identify_list(db: Path, photos, capsys) -> None:
    capsys.readouterr()
    code, out, _ = run(capsys, "enroll", "Grace", str(photos["grace_flip"]), "--db", str(db), *UP)
    assert code == 0
    # The mirror image of the enrolled photo: close (flip averaging makes it closer still).
    dmin = float(out.split("other photos: min ")[1].split(",")[0])
    assert 0.0 < dmin < 0.3
    assert "Grace now has 2 photo(s)" in out
    before = content(db)
    code, out, _ = run(capsys, "enroll", "Grace", str(photos["grace"]), "--db", str(db), *UP)
    assert code == 0 and "already enrolled" in out and content(db) == before
    code, out, _ = run(
        capsys, "verify", str(photos["grace_rot"]), "--as", "Grace", "--db", str(db), *UP
    )
    assert code == 0 and out.startswith("match ") and float(out.split()[1]) < 0.3
    code, out, _ = run(
        capsys, "verify", str(photos["astro"]), "--as", "Grace", "--db", str(db), *UP
    )
    assert code == 1 and out.startswith("no-match ") and float(out.split()[1]) > 0.6
    # A strict tolerance turns the match into a no-match.
    code, out, _ = run(
        capsys,
        "verify",
        str(photos["grace_bright"]),
        "--as",
        "Grace",
        "--db",
        str(db),
        "--tolerance",
        "0.01",
        *UP,
    )
    assert code == 1 and out.startswith("no-match ")
    code, out, _ = run(
        capsys,
        "identify",
        str(photos["grace_crop"]),
        str(photos["astro"]),
        "--db",
        str(db),
        "--batch-size",
        "1",
        *UP,
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(Path(r["file"]).name, r["name"]) for r in rows] == [
        ("grace_crop.png", "Grace"),
        ("astro.png", "unknown"),
    ]
    assert int(rows[0]["bottom"]) > int(rows[0]["top"]) and float(rows[0]["distance"]) < 0.3
    code, out, _ = run(capsys, "list", "--db", str(db))
    assert code == 0 and out.splitlines()[1].startswith("Grace,2,")
    with Gallery(db, create=False) as g:
        assert g.model_id.startswith("dlib_resnet_v1:")
        assert [s[0] for s in g.sources_of("Grace")] == ["grace.png", "grace_flip.png"]


def test_identify_folder_with_workers_and_a_bad_file(db: Path, photos, capsys) -> None:
    folder = photos["grace"].parent
    capsys.readouterr()
    code, out, err = run(capsys, "identify", str(folder), "--db", str(db), "--cpus", "2", *UP)
    assert code == 2  # corrupt.jpg: reported, others still processed
    assert "corrupt.jpg" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    names = {Path(r["file"]).stem: r["name"] for r in rows if Path(r["file"]).stem != "two"}
    assert names == {
        "astro": "unknown",
        "astro_flip": "unknown",
        "grace": "Grace",
        "grace_bright": "Grace",
        "grace_crop": "Grace",
        "grace_flip": "Grace",
        "grace_rot": "Grace",
    }
    two = [r for r in rows if Path(r["file"]).stem == "two"]
    assert len(two) >= 2 and sum(r["name"] == "Grace" for r in two) == 1


def test_detect_csv(photos, capsys) -> None:
    code, out, _ = run(capsys, "detect", str(photos["grace"]), str(photos["noface"]), *UP)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["file", "top", "right", "bottom", "left"]
    assert len(rows) == 2 and rows[1][0].endswith("grace.png")
    top, right, bottom, left = map(int, rows[1][1:])
    assert 100 < top < bottom < 400 and 100 < left < right < 420


def test_bad_inputs_change_nothing(db: Path, photos, tmp_path: Path, capsys) -> None:
    before = content(db)
    cases = [
        (["enroll", "Ada", str(photos["noface"])], "no face found"),
        (["enroll", "Ada", str(photos["two"])], "faces found, expected one"),
        (["enroll", "Ada", str(photos["grace_flip"]), str(photos["corrupt"])], "corrupt.jpg"),
        (["enroll", "Ada", str(tmp_path / "missing.jpg")], "missing.jpg"),
        (["verify", str(photos["grace"]), "--as", "Nobody"], "no person named 'Nobody'"),
        (["verify", str(photos["noface"]), "--as", "Grace"], "no face found"),
        (["remove", "Nobody"], "no person named"),
        (["rename", "Nobody", "X"], "no person named"),
        (["import", str(photos["corrupt"])], "not a cnnkit face export"),
    ]
    for argv, message in cases:
        code, out, err = run(
            capsys, *argv, "--db", str(db), *(UP if argv[0] in ("enroll", "verify") else [])
        )
        assert code == 2, argv
        assert message in err and err.startswith("error: "), (argv, err)
        assert content(db) == before, argv
    # several faces are fine with --largest: the largest is Grace's
    code, out, _ = run(
        capsys, "enroll", "Twin", str(photos["two"]), "--largest", "--db", str(db), *UP
    )
    assert code == 0
    with Gallery(db, create=False) as g:
        assert g.distance_to(g.vectors_of("Twin")[0], "Grace") < 0.01


def test_locked_corrupt_and_other_model_databases(db: Path, photos, tmp_path: Path, capsys) -> None:
    before = content(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        code, _, err = run(
            capsys,
            "enroll",
            "Ada",
            str(photos["grace_flip"]),
            "--db",
            str(db),
            "--timeout",
            "0.2",
            *UP,
        )
        assert code == 2 and "locked by another process" in err
        code, _, err = run(capsys, "rename", "Grace", "G", "--db", str(db), "--timeout", "0.2")
        assert code == 2 and "locked" in err
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert content(db) == before
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    for argv in (
        ["enroll", "Ada", str(photos["grace"]), *UP],
        ["list"],
        ["verify", str(photos["grace"]), "--as", "Ada", *UP],
    ):
        code, _, err = run(capsys, *argv, "--db", str(garbage))
        assert code == 2 and "corrupt or not an SQLite database" in err
    assert garbage.read_bytes() == b"this is not a database" * 100
    other = tmp_path / "other.sqlite3"
    with Gallery(other) as g:
        g.add("Zed", np.ones(128, np.float32), model_id="some-other-encoder")
    other_before = content(other)
    for argv in (
        ["enroll", "Ada", str(photos["grace"]), *UP],
        ["verify", str(photos["grace"]), "--as", "Zed", *UP],
        ["identify", str(photos["grace"]), *UP],
    ):
        code, _, err = run(capsys, *argv, "--db", str(other))
        assert code == 2 and "made with encoder 'some-other-encoder'" in err, argv
    assert content(other) == other_before
    code, _, err = run(capsys, "list", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 2 and "no face database here" in err


def test_missing_face_recognition_models(db: Path, photos, monkeypatch, capsys) -> None:
    detect_mod = importlib.import_module("cnnkit.face.detection")
    pipeline = importlib.import_module("cnnkit.face.pipeline")

    real = importlib.util.find_spec

    def hide(name, *args, **kwargs):
        return None if name == "face_recognition_models" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", hide)
    monkeypatch.setattr(pipeline, "_default", None)
    detect_mod._shape_predictor.cache_clear()
    before = content(db)
    try:
        code, _, err = run(capsys, "enroll", "Ada", str(photos["grace_flip"]), "--db", str(db), *UP)
    finally:
        monkeypatch.undo()
        detect_mod._shape_predictor.cache_clear()
    assert code == 2 and "pip install face_recognition_models" in err
    assert content(db) == before


def test_export_import_remove_rename(db: Path, photos, tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "backup.npz"
    code, out, _ = run(capsys, "export", str(out_file), "--db", str(db))
    assert code == 0 and "1 person(s)" in out
    copy = tmp_path / "copy.sqlite3"
    code, out, _ = run(capsys, "import", str(out_file), "--db", str(copy))
    assert code == 0 and "imported 1 new descriptor(s)" in out
    assert content(copy) != [] and Gallery(copy).persons()[0].name == "Grace"
    code, out, _ = run(
        capsys, "verify", str(photos["grace_crop"]), "--as", "Grace", "--db", str(copy), *UP
    )
    assert code == 0
    assert run(capsys, "rename", "Grace", "Grace Hopper", "--db", str(copy))[0] == 0
    assert run(capsys, "remove", "Grace Hopper", "--db", str(copy))[0] == 0
    assert Gallery(copy).persons() == []


def test_calibrate_and_evaluate(tmp_path: Path, capsys) -> None:
    pairs = write_lfw_like(tmp_path / "lfw")
    db = tmp_path / "cal.sqlite3"
    code, out, _ = run(
        capsys,
        "calibrate",
        "--pairs",
        str(pairs),
        "--images",
        str(tmp_path / "lfw" / "images"),
        "--db",
        str(db),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["n_pairs"] == 12 and result["n_folds"] == 2
    assert result["accuracy_kfold"] == 1.0
    assert 0.25 < result["tau"] < 0.75
    with Gallery(db, create=False) as g:
        assert g.tau == pytest.approx(result["tau"])
        assert g.model_id.startswith("dlib_resnet_v1:")
    roc = tmp_path / "roc.png"
    code, out, _ = run(
        capsys,
        "evaluate",
        "--pairs",
        str(pairs),
        "--images",
        str(tmp_path / "lfw" / "images"),
        "--db",
        str(db),
        "--json",
        "--roc",
        str(roc),
    )
    assert code == 0
    ev = json.loads(out)
    assert {
        "accuracy_at_tau",
        "tau",
        "accuracy_kfold",
        "accuracy_kfold_se",
        "auc",
        "tar_at_far_1e-3",
    } <= ev.keys()
    assert ev["tau"] == pytest.approx(result["tau"]) and ev["accuracy_at_tau"] == 1.0
    assert ev["auc"] == 1.0 and roc.stat().st_size > 1000
    # A silly tolerance shows in accuracy_at_tau but not in the k-fold number.
    code, out, _ = run(
        capsys,
        "evaluate",
        "--pairs",
        str(pairs),
        "--images",
        str(tmp_path / "lfw" / "images"),
        "--tolerance",
        "0.01",
    )
    assert code == 0 and "accuracy at tau 0.0100: 0.5000" in out and "1.0000 +- 0.0000" in out


def test_pair_embedder_policy(photos, tmp_path: Path) -> None:
    from PIL import Image

    from cnnkit.face.pairs import PairStats, centre_box, pair_embedder, pick_centred
    from cnnkit.face.pipeline import default_encoder

    assert centre_box((250, 250, 3), 0.4) == (75, 175, 175, 75)
    boxes = [(0, 60, 60, 0), (100, 160, 160, 100), (90, 170, 170, 90)]
    assert pick_centred(boxes, (250, 250)) == (90, 170, 170, 90)  # same centre: the larger
    brick = tmp_path / "brick.png"
    Image.open(photos["noface"]).resize((250, 250)).save(brick)
    stats = PairStats()
    enc = default_encoder()
    emb = pair_embedder(enc, upsample=0, stats=stats)([photos["two"], brick])
    assert emb.shape == (2, 128) and stats.images == 2 and stats.fallback == 1
    assert stats.several == 1
    flipped = pair_embedder(enc, upsample=0, pipeline="flip")([photos["grace"]])
    plain = pair_embedder(enc, upsample=0)([photos["grace"]])
    assert 0 < np.linalg.norm(flipped - plain) < 0.2


def test_python_api_verify_identify(db: Path, photos) -> None:
    from cnnkit import face

    found = face.identify(str(photos["grace_rot"]), db, upsample=0)
    assert len(found) == 1
    box, name, d = found[0]
    assert name == "Grace" and d < 0.3 and box[2] > box[0]
    assert face.identify(photos["astro"], db, upsample=0)[0][1] is None
    assert face.identify(photos["noface"], db, upsample=0) == []
    with Gallery(db, create=False) as g:
        grace = g.vectors_of("Grace")[0]
        assert face.verify(grace + 0.01, "Grace", g) == (
            True,
            pytest.approx(0.01 * np.sqrt(grace.size)),
        )
        assert face.verify(grace + 0.1, "Grace", g, tolerance=0.5)[0] is False
        # descriptors in, (None box, name, distance) out
        assert face.identify(np.stack([grace, -grace]), g) == [
            (None, "Grace", pytest.approx(0.0, abs=1e-3)),
            (None, None, pytest.approx(2 * np.linalg.norm(grace), rel=1e-4)),
        ]
    match, d = face.verify(face.load_image(photos["grace_crop"]), "Grace", db, upsample=0)
    assert match and d < 0.3
