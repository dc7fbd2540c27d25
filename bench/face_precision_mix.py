"""Do bf16 / int8 descriptors flip verify or identify decisions made in fp32, and is a database
enrolled in fp32 safe to query in another precision? (the question behind ``cnnkit serve
--precision``'s default).

On the same aligned chips (the shipped faces of tests/face/test_precision.py, and the LFW-dev
pairs when the folder is there), every precision this CPU runs encodes every chip; the peer is
fp32. For each precision P it reports the descriptor change from fp32 (max abs per value, max
L2), and at tau 0.6 (dlib's, the service's default) and at the LFW-calibrated tau the number of
pair decisions (d <= tau) that differ from fp32's, both with both sides in P ("same") and with
the enrolled side in fp32 and the query in P ("mixed"); and for 1:N (the first photo of each
LFW person enrolled, the others searched) the searches whose answer (nearest name within tau,
else unknown) differs. The RESULT keys ``*_flips_same`` / ``*_flips_mixed`` add the pair and
the 1:N flips. Run: ``.venv/bin/python bench/face_precision_mix.py [--lfw DIR]``;
1 thread; a few minutes with LFW-dev.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LFW = Path("/work/shared/data/lfw-dev")
TAUS = (0.6, 0.6245)  # dlib's default; cnnkit face calibrate's on LFW-dev (docs/face.md)


def lfw_chips(root: Path) -> tuple[np.ndarray, list[str], list[tuple[int, int, bool]]]:
    """Chips of every image the pairs name (largest face, upsample 1; images without a face
    are left out with their pairs): (N, 150, 150, 3), person of each, pairs (i, j, same)."""
    from PIL import Image

    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import box_area, detect
    from cnnkit.face.evaluate import read_pairs

    pairs = read_pairs(root / "pairs.txt")
    index: dict[str, int] = {}
    chips, persons = [], []
    out_pairs = []
    for p in pairs:
        ids = []
        for key in (p.first, p.second):
            name = key.split("/")[0]
            if key not in index:
                arr = np.asarray(Image.open(root / "images" / key).convert("RGB"), np.uint8)
                boxes = detect(arr, 1)
                if not boxes:
                    index[key] = -1
                else:
                    chips.append(align_faces(arr, [max(boxes, key=box_area)])[1][0])
                    persons.append(name)
                    index[key] = len(chips) - 1
            ids.append(index[key])
        if min(ids) >= 0:
            out_pairs.append((ids[0], ids[1], p.same))
    return np.stack(chips), persons, out_pairs


def shipped_chips() -> tuple[np.ndarray, list[str]]:
    """The chips of tests/face/test_precision.py: Grace Hopper x5, the astronaut x3."""
    from PIL import Image
    from tests.face.shipped import astronaut, chips_of, grace, variants

    g = grace().crop((0, 0, 512, 560))
    a = astronaut()
    imgs = [g, *variants(g).values(), a, variants(a)["crop"], variants(a)["rot"]]
    imgs.append(g.rotate(-4, resample=Image.Resampling.BILINEAR))
    persons = ["grace"] * (1 + len(variants(g))) + ["astro"] * 3 + ["grace"]
    return chips_of(imgs), persons


def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a.astype(np.float64) - b) ** 2).sum(-1))


def identify(gal: np.ndarray, names: list[str], q: np.ndarray, tau: float) -> list[str]:
    d = dist(q[:, None, :], gal[None])  # (M, G)
    j = d.argmin(1)
    return [names[k] if d[i, k] <= tau else "unknown" for i, k in enumerate(j)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=LFW, help="LFW-dev folder (skipped if absent)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from cnnkit.cpu import bf16_native
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.precision import cpu_has_int8

    fp32 = FaceEncoder.load()
    precisions = ["bf16"] + (["int8"] if cpu_has_int8() else [])
    print(f"CPU native bf16: {bf16_native()}; x86 int8: {cpu_has_int8()}", file=sys.stderr)
    sets = {"shipped": (*shipped_chips(), None)}
    if (args.lfw / "pairs.txt").is_file():
        t = time.perf_counter()
        sets["lfw"] = lfw_chips(args.lfw)
        print(
            f"LFW chips: {len(sets['lfw'][0])} in {time.perf_counter() - t:.0f} s", file=sys.stderr
        )
    result: dict[str, str] = {}
    for label, (chips, persons, pairs) in sets.items():
        base = fp32.embed(chips)
        if pairs is None:  # every pair of the shipped chips
            n = len(chips)
            pairs = [(i, j, persons[i] == persons[j]) for i in range(n) for j in range(i + 1, n)]
        ii = np.array([p[0] for p in pairs])
        jj = np.array([p[1] for p in pairs])
        d32 = dist(base[ii], base[jj])
        # 1:N: each person's first chip enrolled, the other chips searched
        first: dict[str, int] = {}
        for k, name in enumerate(persons):
            first.setdefault(name, k)
        gal_idx = np.array(sorted(first.values()))
        probes = np.array([k for k in range(len(persons)) if k not in set(gal_idx)])
        gal_names = [persons[k] for k in gal_idx]
        for p in precisions:
            enc = FaceEncoder(fp32.model, fp32.model_id, precision=p)
            x = enc.embed(chips)
            diff = np.abs(x - base)
            l2 = np.sqrt((diff.astype(np.float64) ** 2).sum(1))
            print(f"[{label}] {p}: max abs {diff.max():.2e}, max L2 {l2.max():.4f}, {len(pairs)} "
                  f"pairs", file=sys.stderr)  # fmt: skip
            for tau in TAUS:
                ref = d32 <= tau
                same = (dist(x[ii], x[jj]) <= tau) != ref
                mixed = (dist(base[ii], x[jj]) <= tau) != ref
                near = int((np.abs(d32 - tau) < 2 * l2.max()).sum())
                ans32 = identify(base[gal_idx], gal_names, base[probes], tau)
                ans_same = identify(x[gal_idx], gal_names, x[probes], tau)
                ans_mixed = identify(base[gal_idx], gal_names, x[probes], tau)
                flips_1n = sum(a != b for a, b in zip(ans32, ans_same, strict=True))
                flips_1n_mixed = sum(a != b for a, b in zip(ans32, ans_mixed, strict=True))
                print(
                    f"  tau {tau}: pair flips same {int(same.sum())}, mixed {int(mixed.sum())} "
                    f"(pairs within 2 x max L2 of tau: {near}; min |d - tau| "
                    f"{np.abs(d32 - tau).min():.4f}); 1:N flips same {flips_1n}, mixed "
                    f"{flips_1n_mixed} of {len(probes)} searches",
                    file=sys.stderr,
                )
                key = f"{label}_{p}_tau{tau:g}"
                result[f"{key}_flips_mixed"] = str(int(mixed.sum()) + flips_1n_mixed)
                result[f"{key}_flips_same"] = str(int(same.sum()) + flips_1n)
            result[f"{label}_{p}_max_abs"] = f"{diff.max():.2e}"
            result[f"{label}_{p}_max_l2"] = f"{l2.max():.4f}"
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
