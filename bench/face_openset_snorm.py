"""Symmetric score normalisation (S-norm) for open-set 1:N on LFW-dev, against T-norm and dlib.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_openset_snorm.py [--lfw DIR] [--seeds 0 1 2]

The protocol and the searches are those of bench/face_openset.py (cnnkit.face.openset: the first
photo of each LFW-dev person with 2+ photos enrolled, the others mated searches, the persons with
one photo non-mated), on the default descriptors (``subpixel+flip+68``: the sub-pixel 5-point
chip and the 68-point chip, each with its mirror, cached by bench/face.py) and on dlib's own
pipeline (face_recognition, cached by bench/face_openset.py).
Measured on full LFW-dev and on the 6 person-disjoint halves of bench/face_openset_levers.py
(seeds 0 1 2, each half evaluated on its own: its gallery, its strangers).

Scores of a search against gallery person j (d_j: distance to j's nearest enrolled descriptor),
with a cohort of the k nearest (k = 5, T-norm's; 3 and 10 also reported, not chosen here):

- ``distance``: d_j;
- ``tnorm``: d_j / mu_p, mu_p = mean(d_2..d_{k+1}) of the search (the library's T-norm);
- ``gnorm@1``: the nearest person by distance, scored d_1 / mu_g(nearest), where mu_g(j) is
  the mean distance of j to the k nearest *other enrolled persons* (gallery-side cohort;
  the figure docs/face.md lists as "measured, not adopted");
- ``gnorm``: d_j / mu_g(j) for every j, the nearest by that score (re-ranked: hub persons, near
  everybody, get a large mu_g and are demoted);
- ``snorm_geo``: d_j / sqrt(mu_p(j) mu_g(j)), re-ranked, mu_p(j) the mean distance of the search
  to its k nearest persons other than j (for the nearest person, T-norm's mu_p);
- ``snorm_avg``: (d_j / mu_p(j) + d_j / mu_g(j)) / 2, re-ranked;
- ``snorm_geo@1``: S-norm's score without the re-ranking (the nearest person by distance);
- ``snorm_geo_top``: S-norm re-ranking only the k + 1 nearest persons by distance (what
  ``identify`` fetches; cnnkit.face.openset norm ``"snorm"`` re-ranks every person).

Last line: ``RESULT snorm_fnir_at_fpir_0.01=<best S-norm, k=5, full LFW-dev> ...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face as bench_face  # noqa: E402  (LFW boxes and descriptors, cached)
import face_openset as bench_openset  # noqa: E402  (dlib's descriptors, cached)
import face_openset_levers as bench_levers  # noqa: E402  (person-disjoint halves)

OUT = bench_face.OUT
FAR = 1e3  # the distance of a search to a person whose photo has no face (as the library)


def scorers(k: int) -> dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    """name -> f(dist (M, G), mu_g (G,)) -> (nearest (M,), score (M,)); mu_p and mu_g are the
    library's (cnnkit.face.openset.probe_scale / gallery_scale) with a cohort of k."""
    from cnnkit.face import openset

    def top(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = scores.argmin(axis=1)
        return j, scores[np.arange(len(j)), j]

    def at1(scores: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = dist.argmin(axis=1)
        return j, scores[np.arange(len(j)), j]

    def shortlist(d: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """S-norm (geo) over the k + 1 nearest persons only (what ``identify`` fetches)."""
        c = np.argsort(d, axis=1)[:, : k + 1]
        dc = np.take_along_axis(d, c, axis=1)
        sc = dc / np.sqrt(openset.probe_scale(dc, k) * g[c])
        j = sc.argmin(axis=1)
        return c[np.arange(len(j)), j], sc[np.arange(len(j)), j]

    return {
        "distance": lambda d, g: top(d),
        "tnorm": lambda d, g: top(d / np.sort(d, axis=1)[:, 1 : k + 1].mean(1)[:, None]),
        "gnorm@1": lambda d, g: at1(d / g[None, :], d),
        "gnorm": lambda d, g: top(d / g[None, :]),
        "snorm_geo@1": lambda d, g: at1(d / np.sqrt(openset.probe_scale(d, k) * g[None, :]), d),
        "snorm_geo": lambda d, g: top(d / np.sqrt(openset.probe_scale(d, k) * g[None, :])),
        "snorm_avg": lambda d, g: top(0.5 * (d / openset.probe_scale(d, k) + d / g[None, :])),
        "snorm_geo_top": shortlist,
    }


def evaluate(x: np.ndarray, persons: list[str], k: int) -> dict[str, object]:
    """Every scorer on the open-set split of ``x`` labelled ``persons`` (NaN rows: no face)."""
    from cnnkit.face import openset

    sp = openset.split_persons(persons)
    x = np.asarray(x, np.float64)
    ok = ~np.isnan(x[sp.gallery]).any(axis=1)
    g, lab = x[sp.gallery][ok], sp.gallery_labels[ok]
    n = len(sp.persons)
    dist = openset.person_distances(np.nan_to_num(x[sp.probes], nan=FAR), g, lab)
    if dist.shape[1] < n:
        dist = np.concatenate([dist, np.full((len(dist), n - dist.shape[1]), np.inf)], axis=1)
    dist[~np.isfinite(dist)] = FAR
    mu_g = openset.gallery_scale(g, lab, n, k)
    miss = np.isnan(x[sp.probes]).any(axis=1)
    out = {}
    for name, f in scorers(k).items():
        nearest, score = f(dist, mu_g)
        s = openset.Searches(np.where(miss, np.inf, score), np.where(miss, -1, nearest), sp.mates)
        out[name] = openset.evaluate_searches(s, n, name)
    return out


def row(r) -> str:
    return (
        f"r1 {100 * r.rank1:.2f} FNIR@.01 {100 * r.fnir_at_fpir[0.01]:.2f} "
        f"@.001 {100 * r.fnir_at_fpir[0.001]:.2f}"
    )


def store_check(x: np.ndarray, persons: list[str], lib) -> tuple[float, float, float]:
    """``identify``'s path on the LFW-dev gallery in a Gallery (sqlite, exact index): ms per
    search of nearest(6) + Threshold.decide for T-norm and S-norm (1 thread, 1 search at a
    time), and the fraction of searches whose S-norm name and score (tau = inf) agree with
    openset.evaluate_descriptors(norm="snorm") (``lib``'s nearest and score)."""
    import tempfile

    from cnnkit.face import Gallery, openset
    from cnnkit.face.identification import Threshold

    sp = openset.split_persons(persons)
    probes = np.asarray(x[sp.probes], np.float32)
    ms = {}
    agree = 0
    with tempfile.TemporaryDirectory() as tmp, Gallery(Path(tmp) / "g.sqlite3") as db:
        for i, j in zip(sp.gallery, sp.gallery_labels, strict=True):
            db.add(sp.persons[j], np.asarray(x[i], np.float32)[None], model_id="bench")
        db.nearest(probes[:1], 6)  # build the index
        for norm in ("tnorm", "snorm"):
            t = Threshold(np.inf, "identification", norm=norm)
            start = time.perf_counter()
            for m, q in enumerate(probes):
                name, score = t.decide(db.nearest(q[None], t.k)[0], db)
                if norm == "snorm":
                    want = sp.persons[lib.nearest[m]]
                    agree += name == want and abs(score - lib.score[m]) < 1e-4
            ms[norm] = 1e3 * (time.perf_counter() - start) / len(probes)
    return ms["tnorm"], ms["snorm"], agree / len(probes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=bench_openset.LFW_DEFAULT)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    bench_face._threads(1)
    images, (boxes, _), *_ = bench_face.lfw_setup(args.lfw)
    root = args.lfw / "images"
    persons = [name.split("/")[0] for name in images]
    e1, e1f = bench_face.lfw_embeddings(images, root, boxes, 1, OUT / "lfw_dev_emb_k1.npz")
    e68, e68f = bench_face.lfw_embeddings(images, root, boxes, 1, OUT / "lfw_dev_emb_68.npz", 68)
    xc = (e1 + e1f + e68 + e68f) / 4
    xd = bench_openset.dlib_descriptors(images, root, OUT / "lfw_dev_dlib_fr.npz")

    full: dict[int, dict] = {}
    dlib_full = evaluate(xd, persons, 5)["distance"]
    print(f"full LFW-dev: gallery {dlib_full.n_gallery}, {dlib_full.n_mated} mated, "
          f"{dlib_full.n_nonmated} non-mated; dlib's own pipeline {row(dlib_full)}")  # fmt: skip
    for k in (3, 5, 10):
        full[k] = evaluate(xc, persons, k)
        for name, r in full[k].items():
            ratio = r.fnir_at_fpir[0.01] / dlib_full.fnir_at_fpir[0.01]
            print(f"  full k={k:2d} {name:12s} {row(r)} ratio {ratio:.3f}", flush=True)

    halves: dict[tuple[int, str], list[list[float]]] = {}
    for seed in args.seeds:
        half = bench_levers.person_halves(persons, seed)
        for split, sel in ((f"s{seed}:B", ~half), (f"s{seed}:A", half)):
            idx = np.flatnonzero(sel)
            ps = [persons[i] for i in idx]
            dl = evaluate(xd[idx], ps, 5)["distance"]
            line = f"  half {split} dlib {row(dl)};"
            for k in (3, 5, 10):
                for name, r in evaluate(xc[idx], ps, k).items():
                    ratio = r.fnir_at_fpir[0.01] / dl.fnir_at_fpir[0.01]
                    halves.setdefault((k, name), []).append(
                        [r.rank1, r.fnir_at_fpir[0.01], r.fnir_at_fpir[0.001], ratio]
                    )
                    if k == 5:
                        line += f" {name} {100 * r.fnir_at_fpir[0.01]:.2f}"
            halves.setdefault((0, "dlib"), []).append(
                [dl.rank1, dl.fnir_at_fpir[0.01], dl.fnir_at_fpir[0.001], 1.0]
            )
            print(line, flush=True)
    print(
        f"mean over {len(args.seeds) * 2} person-disjoint halves (ratio: mean of per-half ratios):"
    )
    for (k, name), v in halves.items():
        m = np.mean(v, axis=0)
        print(
            f"  halves k={k:2d} {name:12s} r1 {100 * m[0]:.2f} FNIR@.01 {100 * m[1]:.2f} "
            f"@.001 {100 * m[2]:.2f} ratio {m[3]:.3f}"
        )
    from cnnkit.face import openset

    lib = openset.evaluate_descriptors(xc, persons, norm="snorm")
    ref = full[5]["snorm_geo"]
    print(f"library norm=snorm on full LFW-dev: {row(lib)} (bench snorm_geo k=5: {row(ref)})")
    sp = openset.split_persons(persons)
    d = openset.person_distances(xc[sp.probes], xc[sp.gallery], sp.gallery_labels)
    scales = openset.gallery_scale(xc[sp.gallery], sp.gallery_labels)
    lib_s = openset.search(d, sp.mates, "snorm", scales)
    ms_t, ms_s, agree = store_check(xc, persons, lib_s)
    print(
        f"identify's path (Gallery, {len(sp.persons)} persons): nearest(6) + decide "
        f"{ms_t:.3f} ms/search with T-norm, {ms_s:.3f} ms with S-norm (+{ms_s - ms_t:.3f} ms: "
        f"the candidates' gallery cohorts on the fly); S-norm name and score equal to "
        f"evaluate's in {100 * agree:.2f}% of the searches"
    )
    best = min(("snorm_geo", "snorm_avg"), key=lambda n: full[5][n].fnir_at_fpir[0.01])
    b, t = full[5][best], full[5]["tnorm"]
    dl01 = dlib_full.fnir_at_fpir[0.01]
    hb = np.mean(halves[5, best], axis=0)
    ht = np.mean(halves[5, "tnorm"], axis=0)
    print(
        f"RESULT snorm={best} snorm_fnir_at_fpir_0.01={b.fnir_at_fpir[0.01]:.4f} "
        f"tnorm_fnir_at_fpir_0.01={t.fnir_at_fpir[0.01]:.4f} dlib_fnir_at_fpir_0.01={dl01:.4f} "
        f"snorm_ratio_vs_dlib={b.fnir_at_fpir[0.01] / dl01:.3f} "
        f"tnorm_ratio_vs_dlib={t.fnir_at_fpir[0.01] / dl01:.3f} snorm_rank1={b.rank1:.4f} "
        f"tnorm_rank1={t.rank1:.4f} halves_snorm_ratio={hb[3]:.3f} "
        f"halves_tnorm_ratio={ht[3]:.3f} snorm_fnir_at_fpir_0.001={b.fnir_at_fpir[0.001]:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
