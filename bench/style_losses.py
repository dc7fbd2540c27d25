"""Benchmark: score the offline loss networks for the optimisation, to choose the default.

Each candidate is a variant of the offline random VGG-19 (normalised per channel or per layer, on
the content or on content + style, average or max pooling). Each runs the same optimisation on
the same pairs (faces included) and is scored by :mod:`cnnkit.style.score`:
``style`` = ||P(G) - P(S)|| with the trained style-prediction network P (lower is better) and
``kept`` = SSIM of the Sobel edge maps of G and C (higher is better). The content itself and the
fast method's output are scored too, as references. Writes a picture grid with ``--grid PATH``.

Usage: ``python bench/style_losses.py [--size 128] [--iterations 80] [--grid grid.jpg]
[--candidates channel/content+style/avg,channel/content+style/max]``.
Last line: ``RESULT best=<candidate> <candidate>_style=<x> <candidate>_kept=<y> ...``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

CANDIDATES = {
    "channel/content+style/avg": {},  # the current default
    "channel/content/avg": {"normalize_on": "content"},
    "layer/content+style/avg": {"per_channel": False},
    "layer/content/avg": {"per_channel": False, "normalize_on": "content"},
    "channel/content+style/max": {"pooling": "max"},
    "channel/content/max": {"pooling": "max", "normalize_on": "content"},
    "channel/content+style/avg/init-fast": {"init": "fast"},
    "channel/content/max/init-fast": {"pooling": "max", "normalize_on": "content", "init": "fast"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--grid", default=None)
    parser.add_argument("--candidates", default=None, help="comma-separated subset of CANDIDATES")
    args = parser.parse_args()
    chosen = args.candidates.split(",") if args.candidates else list(CANDIDATES)

    import numpy as np
    import torch
    from PIL import Image

    from cnnkit.io import sample_path, to_uint8
    from cnnkit.style import FastStylizer, StyleConfig, stylize_fast, transfer
    from cnnkit.style.paint import swirl_painting
    from cnnkit.style.score import content_kept, style_distance

    torch.set_num_threads(1)
    swirl = Image.fromarray(to_uint8(swirl_painting(256, seed=0)))
    pairs = {
        "astronaut+swirl": (sample_path("astronaut"), swirl),
        "grace_hopper+swirl": (sample_path("grace_hopper"), swirl),
        "chelsea+coffee": (sample_path("chelsea"), sample_path("coffee")),
    }
    stylizer = FastStylizer("fp32")
    scores: dict[str, list[tuple[float, float]]] = {}
    images: dict[str, list[np.ndarray]] = {}

    def score(name: str, G: np.ndarray, C, S) -> None:  # noqa: ANN001
        scores.setdefault(name, []).append((style_distance(G, S, stylizer), content_kept(G, C)))
        images.setdefault(name, []).append(G)

    for C, S in pairs.values():
        c_img = Image.open(C).convert("RGB")
        c_img.thumbnail((args.size, args.size))
        score("(content itself)", np.asarray(c_img, np.float32) / 255.0, C, S)
        score("(fast method)", stylize_fast(C, S, size=args.size, stylizer=stylizer).image, C, S)
        for name in chosen:
            options = CANDIDATES[name]
            config = StyleConfig(size=args.size, iterations=args.iterations, **options)
            G, _ = transfer(C, S, config, backbone="random-vgg19")
            score(name, G, C, S)
    print(f"{'candidate':28s} " + " ".join(f"{p:>22s}" for p in pairs) + "    mean style / kept")
    for name, values in scores.items():
        cells = " ".join(f"{s:9.2f} / {k:5.3f}    " for s, k in values)
        ms, mk = np.mean([v[0] for v in values]), np.mean([v[1] for v in values])
        print(f"{name:28s} {cells} {ms:8.2f} / {mk:5.3f}")
    if args.grid:
        _grid(args.grid, images, list(pairs))
    ranked = chosen
    # the default: closest style among those keeping at least 90% of the best content score
    kept = {n: np.mean([v[1] for v in scores[n]]) for n in ranked}
    style = {n: np.mean([v[0] for v in scores[n]]) for n in ranked}
    eligible = [n for n in ranked if kept[n] >= 0.9 * max(kept.values())]
    best = min(eligible, key=lambda n: style[n])
    print(
        f"RESULT best={best.replace('/', '_')} "
        + " ".join(
            f"{n.replace('/', '_')}_style={style[n]:.2f} {n.replace('/', '_')}_kept={kept[n]:.3f}"
            for n in ranked
        )
    )


def _grid(path: str, images: dict, pairs: list[str]) -> None:
    from PIL import Image, ImageDraw

    from cnnkit.io import to_uint8

    names = list(images)
    h, w = 140, 140
    sheet = Image.new("RGB", (len(names) * (w + 4) + 4, len(pairs) * (h + 4) + 30), "white")
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(names):
        draw.text((4 + j * (w + 4), 2), name.replace("/", "\n", 1), fill="black")
        for i, G in enumerate(images[name]):
            tile = Image.fromarray(to_uint8(G))
            tile.thumbnail((w, h))
            sheet.paste(tile, (4 + j * (w + 4), 28 + i * (h + 4)))
    sheet.save(path, quality=85)


if __name__ == "__main__":
    main()
