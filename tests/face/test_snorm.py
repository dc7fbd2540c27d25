"""S-norm (cnnkit.face.openset norm "snorm"): against a brute-force reference, the hub person it
demotes, and ``identify``'s on-the-fly version (Threshold.decide with the store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import CnnkitError
from cnnkit.face import Gallery, openset
from cnnkit.face.identification import Threshold

K = openset.TNORM_K


def brute_snorm(q: np.ndarray, g: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """(M, G) S-norm scores by loops: d_j / sqrt(mu_p(j) mu_g(j)), float64."""
    persons = sorted(set(lab.tolist()))

    def pdist(a: np.ndarray, j: int) -> float:
        return min(float(np.sqrt(((a - b) ** 2).sum())) for b in g[lab == j])

    mu_g = []
    for j in persons:
        others = sorted(min(pdist(a, i) for a in g[lab == j]) for i in persons if i != j)
        mu_g.append(np.mean(others[:K]))
    out = np.zeros((len(q), len(persons)))
    for m, v in enumerate(q):
        d = [pdist(v, j) for j in persons]
        for j in persons:
            mu_p = np.mean(sorted(d[i] for i in persons if i != j)[:K])
            out[m, j] = d[j] / np.sqrt(mu_p * mu_g[j])
    return out


def test_snorm_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    lab = np.array([0, 0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7, 8])
    g = rng.normal(size=(len(lab), 6))
    q = rng.normal(size=(7, 6))
    d = openset.person_distances(q, g, lab)
    scales = openset.gallery_scale(g, lab)
    got = openset.normalise(d, "snorm", scales)
    want = brute_snorm(q, g, lab)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    s = openset.search(d, np.full(len(q), -1), "snorm", scales)
    np.testing.assert_array_equal(s.nearest, want.argmin(1))
    # for the nearest person by distance, the probe side is T-norm's divisor
    j = d.argmin(1)
    tn = openset.normalise(d, "tnorm")[np.arange(len(q)), j]
    pr = openset.probe_scale(d)[np.arange(len(q)), j]
    np.testing.assert_allclose(d[np.arange(len(q)), j] / pr, tn)
    with pytest.raises(CnnkitError, match="gallery-side"):
        openset.normalise(d, "snorm")
    with pytest.raises(CnnkitError, match="at least 2"):
        openset.gallery_scale(g[:2], lab[:2])


def hub_gallery() -> tuple[np.ndarray, list[str], np.ndarray]:
    """8 persons on the axes at radius 1 and a hub at the origin (distance 1 to all of them); a
    probe of p0 (0.48 e1) that is nearer the hub (0.48) than p0 (0.52)."""
    dim = 8
    g = np.concatenate([np.eye(dim)[:4], -np.eye(dim)[:4], np.zeros((1, dim))])
    names = [f"p{i}" for i in range(8)] + ["hub"]
    q = 0.48 * np.eye(dim)[:1]
    return g, names, q


def test_snorm_demotes_the_hub_person() -> None:
    g, names, q = hub_gallery()
    lab = np.arange(len(names))
    d = openset.person_distances(q, g, lab)
    scales = openset.gallery_scale(g, lab)
    assert scales[names.index("hub")] == pytest.approx(1.0)
    assert scales[0] > 1.3  # p0: the hub at 1, then 4 of the others at sqrt(2)
    mates = np.array([0])
    assert openset.search(d, mates, "none").nearest[0] == names.index("hub")
    assert openset.search(d, mates, "tnorm").nearest[0] == names.index("hub")
    s = openset.search(d, mates, "snorm", scales)
    assert s.nearest[0] == 0
    assert s.score[0] == pytest.approx(brute_snorm(q, g, lab)[0, 0])


def gallery_of(path: Path, g: np.ndarray, names: list[str]) -> Gallery:
    db = Gallery(path)
    for v, name in zip(g, names, strict=True):
        db.add(name, np.asarray(v, np.float32)[None], model_id="test")
    return db


def test_identify_names_the_snorm_winner_from_the_store(tmp_path: Path) -> None:
    g, names, q = hub_gallery()
    with gallery_of(tmp_path / "hub.sqlite3", g, names) as db:
        t = Threshold(0.5, "identification", norm="snorm")
        near = db.nearest(q.astype(np.float32), t.k)[0]
        assert near[0].name == "hub"
        name, score = t.decide(near, db)
        lab = np.arange(len(names))
        assert name == "p0" and score == pytest.approx(brute_snorm(q, g, lab)[0, 0], rel=1e-5)
        assert Threshold(score - 1e-4, "identification", norm="snorm").decide(near, db)[0] is None
        assert Threshold(0.5, "identification", norm="tnorm").decide(near)[0] == "hub"
        with pytest.raises(CnnkitError, match="store"):
            t.decide(near)


def test_identify_matches_the_full_matrix_on_its_shortlist(tmp_path: Path) -> None:
    """Threshold.decide (6 nearest persons, gallery cohorts from the store on the fly) equals
    the full-matrix S-norm restricted to those 6 persons, with persons of 1-3 photos."""
    rng = np.random.default_rng(7)
    lab = np.repeat(np.arange(20), rng.integers(1, 4, size=20))
    g = rng.normal(size=(len(lab), 16)).astype(np.float32)
    names = [f"n{j:02d}" for j in lab]
    q = rng.normal(size=(12, 16)).astype(np.float32)
    full = openset.normalise(
        openset.person_distances(q, g, lab), "snorm", openset.gallery_scale(g, lab)
    )
    t = Threshold(np.inf, "identification", norm="snorm")
    with gallery_of(tmp_path / "r.sqlite3", g, names) as db:
        for m, near in enumerate(db.nearest(q, t.k)):
            cols = [int(x.name[1:]) for x in near]
            j = cols[int(full[m, cols].argmin())]
            name, score = t.decide(near, db)
            assert name == f"n{j:02d}" and score == pytest.approx(full[m, j], rel=1e-5)


def test_snorm_with_one_enrolled_person_names_nobody(tmp_path: Path) -> None:
    with gallery_of(tmp_path / "one.sqlite3", np.eye(4)[:1], ["solo"]) as db:
        near = db.nearest(np.eye(4, dtype=np.float32)[:1], 6)[0]
        assert Threshold(9.0, "identification", norm="snorm").decide(near, db) == (
            None,
            float("inf"),
        )
