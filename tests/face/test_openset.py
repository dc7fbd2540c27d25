"""Open-set 1:N identification: the FRVT metrics against brute force, T-norm, the split, and the
CLI (evaluate-identification, calibrate --for identification, info, identify's warning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cnnkit.cli.main import main
from cnnkit.errors import CnnkitError
from cnnkit.face import DEFAULT_PIPELINE, Gallery, openset
from tests.face.shipped import write_person_folder


def brute(score, nearest, mate, tau):
    """FPIR and FNIR at tau, one search at a time."""
    fp = [s <= tau for s, m in zip(score, mate, strict=True) if m < 0]
    fn = [not (n == m and s <= tau) for s, n, m in zip(score, nearest, mate, strict=True) if m >= 0]
    return sum(fp) / len(fp), sum(fn) / len(fn)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 2.0, allow_nan=False), min_size=4, max_size=60),
    st.lists(st.integers(-1, 3), min_size=4, max_size=60),
    st.sampled_from([0.01, 0.1, 0.25, 0.5]),
)
@example(scores=[0.0, 0.0, 0.0, 0.0], mates=[0, 0, -1, -1], fpir=0.5)  # tied stranger scores
def test_tau_at_fpir_and_fnir_match_brute_force(scores, mates, fpir) -> None:
    n = min(len(scores), len(mates))
    mate = np.array(mates[:n])
    if (mate < 0).sum() == 0 or (mate >= 0).sum() == 0:
        mate[0], mate[-1] = -1, 1
    score = np.array(scores[:n])
    nearest = np.where(np.arange(n) % 3 == 0, 2, np.maximum(mate, 0))
    s = openset.Searches(score, nearest, mate)
    tau = openset.tau_at_fpir(score[mate < 0], fpir)
    got_fpir, got_fnir = brute(score, nearest, mate, tau)
    assert got_fpir <= fpir + 1e-12
    # tau is the largest such threshold: the next non-mated score above it breaks the FPIR.
    above = np.sort(score[mate < 0])
    above = above[above > tau]
    if len(above):
        assert brute(score, nearest, mate, float(above[0]))[0] > fpir
    assert openset.fnir_at(s, tau) == pytest.approx(got_fnir)
    r = openset.evaluate_searches(s, 4, fpirs=(fpir,))
    assert r.fnir_at_fpir[fpir] == pytest.approx(got_fnir)
    assert r.rank1 == pytest.approx(np.mean(nearest[mate >= 0] == mate[mate >= 0]))
    # The DET curve is the brute force at every non-mated score.
    for f, fn, t in zip(r.fpir_curve, r.fnir_curve, np.sort(score[mate < 0]), strict=True):
        bf = brute(score, nearest, mate, t)
        assert fn == pytest.approx(bf[1]) and f == pytest.approx(bf[0])


def test_person_distances_tnorm_and_split() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 8))
    labels = np.array([0, 0, 1, 2, 2])
    q = rng.normal(size=(3, 8))
    d = openset.person_distances(q, g, labels)
    full = np.linalg.norm(q[:, None] - g[None], axis=2)
    want = np.stack([full[:, labels == j].min(1) for j in range(3)], axis=1)
    np.testing.assert_allclose(d, want)
    # T-norm: d / mean of the next nearest (here 2 others of 3 persons).
    srt = np.sort(d, axis=1)
    np.testing.assert_allclose(openset.normalise(d, "tnorm"), d / srt[:, 1:3].mean(1)[:, None])
    with pytest.raises(CnnkitError):
        openset.normalise(d[:, :1], "tnorm")
    sp = openset.split_persons(["a", "a", "b", "c", "c", "c"])
    assert sp.persons == ["a", "c"] and list(sp.gallery) == [0, 3]
    assert sorted(zip(sp.probes.tolist(), sp.mates.tolist(), strict=True)) == [
        (1, 0),
        (2, -1),
        (4, 1),
        (5, 1),
    ]
    sp = openset.split_persons(["a", "a", "b", "c", "c", "c"], gallery_size=1, seed=3)
    assert len(sp.persons) == 1 and (sp.mates == -1).sum() in (3, 4)
    with pytest.raises(CnnkitError, match="gallery-size"):
        openset.split_persons(["a", "a"], gallery_size=2)


def test_tnorm_separates_a_stranger_near_everybody() -> None:
    """A stranger equally near every enrolled person is rejected by T-norm at a tau that still
    names a mate who is near one person only: what the distance alone cannot do."""
    mate_row = np.array([[0.50, 0.95, 1.0, 1.0, 1.05, 1.0]])
    stranger_row = np.array([[0.45, 0.50, 0.52, 0.55, 0.5, 0.51]])
    dist = np.concatenate([mate_row, stranger_row])
    s = openset.search(dist, np.array([0, -1]), "tnorm")
    assert s.score[0] < 0.6 < s.score[1]
    raw = openset.search(dist, np.array([0, -1]), "none")
    assert raw.score[1] < raw.score[0]  # by distance, the stranger looks the better match


@pytest.mark.parametrize("norm", openset.NORMS)
def test_a_photo_without_a_face_searches_as_a_reject(norm: str) -> None:
    """A NaN probe (no face) is a non-mated reject at every tau: adding it changes no tau, even
    when a gallery person's photo has no face either (T-norm once scored that pair as close)."""
    rng = np.random.default_rng(1)
    persons = [f"p{i}" for i in range(8) for _ in (0, 1)] + ["s1", "s2", "s3"]
    x = rng.normal(size=(len(persons), 16)) / 4
    x[0] = np.nan  # p0's enrolled photo
    with_nan = np.concatenate([x, np.full((1, 16), np.nan)])
    r = openset.evaluate_descriptors(x, persons, norm=norm, fpirs=(0.0,))
    r_nan = openset.evaluate_descriptors(with_nan, [*persons, "s4"], norm=norm, fpirs=(0.0,))
    assert r_nan.n_nonmated == r.n_nonmated + 1
    assert r_nan.tau_at_fpir[0.0] == pytest.approx(r.tau_at_fpir[0.0])
    assert r_nan.fnir_at_fpir[0.0] == pytest.approx(r.fnir_at_fpir[0.0])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["face", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_cli_evaluate_calibrate_info_and_warning(tmp_path: Path, capsys) -> None:
    folder = write_person_folder(tmp_path / "people")
    det = tmp_path / "det.png"
    up = ("--upsample", "0")
    code, out, _ = run(
        capsys, "evaluate-identification", "--images", str(folder), "--json", "--det", str(det),
        "--norm", "none", *up,
    )  # fmt: skip
    assert code == 0
    r = json.loads(out)
    assert r["n_gallery"] == 1 and r["n_mated"] == 4 and r["n_nonmated"] == 2
    assert r["rank1"] == 1.0  # one enrolled person: every mated search finds her
    # FPIR 0.01 of 2 strangers allows none: tau is below the nearest stranger, and Grace's
    # own variants are nearer than any stranger (dlib's model separates them by far).
    assert r["fnir_at_fpir_0.01"] == 0.0 and r["fnir_at_fpir_0.001"] == 0.0
    assert 0.1 < r["tau_at_fpir_0.01"] == r["tau_at_fpir_0.001"] < 1.0
    assert det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    db = tmp_path / "faces.sqlite3"
    code, out, _ = run(
        capsys, "calibrate", "--for", "identification", "--fpir", "0.001", "--images",
        str(folder), "--db", str(db), "--norm", "none", *up,
    )  # fmt: skip
    assert code == 0 and "identification tau" in out
    with Gallery(db, create=False) as g:
        ident = g.identification_tau
        assert ident is not None and ident.gallery_size == 1 and ident.fpir == 0.001
        assert ident.tau == pytest.approx(r["tau_at_fpir_0.001"]) and ident.norm == "none"
        assert g.tau is None  # the pair tau is another key
    run(capsys, "enroll", "Grace", str(folder / "Grace_Hopper/Grace_Hopper_0001.jpg"),
        "--db", str(db), *up)  # fmt: skip
    code, out, err = run(capsys, "identify", str(folder / "Astro_Naut"), "--db", str(db), *up)
    assert code == 0 and "warning" not in err
    assert ",unknown," in out  # the stranger is not named Grace at the identification tau
    run(capsys, "enroll", "Astro", str(folder / "Astro_Naut/Astro_Naut_0001.jpg"),
        "--db", str(db), *up)  # fmt: skip
    code, out, err = run(capsys, "identify", str(folder / "Astro_Mirror"), "--db", str(db), *up)
    assert code == 0 and "warning: the gallery has 2 persons" in err and "calibrated on 1" in err
    assert ",Astro," in out

    code, out, _ = run(capsys, "info", "--db", str(db), "--json")
    info = json.loads(out)
    assert info["persons"] == 2 and info["descriptors"] == 2
    assert info["pipeline"] == DEFAULT_PIPELINE and info["pipeline_recorded"] is True
    assert info["tau_identification"] == pytest.approx(ident.tau)
    assert info["tau_identification_gallery_size"] == 1 and info["tau_verification"] is None
    code, out, _ = run(capsys, "info", "--db", str(db))
    assert "identification tau" in out and "verification tau: not calibrated" in out


@pytest.mark.parametrize(
    ("pipeline", "advice"),
    [
        ("dlib", "re-enroll"),
        ("subpixel+flip", "re-enroll"),
        ("subpixel+flip+68", "re-enroll"),
        ("subpixel+flip+68+facenet", None),
    ],
)
def test_info_advises_re_enrolling_only_for_older_pipelines(tmp_path, capsys, pipeline, advice):
    db = tmp_path / "faces.sqlite3"
    with Gallery(db) as g:
        g.add("Ann", np.ones((1, 128), np.float32), model_id="m", pipeline=pipeline)
    code, out, _ = run(capsys, "info", "--db", str(db))
    assert code == 0 and f"descriptors made with: {pipeline}\n" in out
    assert ("re-enroll" in out) == (advice == "re-enroll")
    assert ("not the default" in out) == (advice == "not the default")
