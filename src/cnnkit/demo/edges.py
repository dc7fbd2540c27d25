"""Demo section: edge detection on the course's 6x6 example and on shipped photographs."""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

TITLE = "Edge detection (cnnkit edges)"

#: (kernel, caption) for each photo, in display order.
_PANELS = (
    ("vertical", "vertical [[1,0,-1]]*3, signed: red = brighter on the left, blue = on the right"),
    ("horizontal", "horizontal (transpose), signed: red = brighter above, blue = below"),
    ("sobel", "Sobel magnitude sqrt(gx² + gy²)"),
    ("scharr", "Scharr magnitude"),
)
_PHOTOS = ("camera", "astronaut")


def _table(matrix: np.ndarray, caption: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{v:g}</td>" for v in row) + "</tr>" for row in np.asarray(matrix)
    )
    return (
        '<table style="display:inline-table;margin:0.5em;vertical-align:middle">'
        f"<caption>{html.escape(caption)}</caption>{rows}</table>"
    )


def _figure(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _upscale(picture: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so a 6x6 array is visible as a picture."""
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def _course_example(out_dir: Path) -> str:
    from cnnkit.edges import detect, to_display, vertical
    from cnnkit.io import save_image

    image = np.zeros((6, 6))
    image[:, :3] = 10  # the notes' image: left half 10, right half 0
    valid = detect(image, "vertical", padding="valid")  # 6x6 * 3x3 -> 4x4
    same = detect(image, "vertical", padding=1, pad_mode="zeros")  # pad to 8x8 -> 6x6
    save_image(out_dir / "edges-course-input.png", _upscale(image / 10.0, 24))
    save_image(out_dir / "edges-course-output.png", _upscale(to_display(valid, signed=True), 36))
    parts = [
        "<h3>The course's example</h3>",
        "<p>A 6x6 image, bright (10) on the left and dark (0) on the right, cross-correlated "
        "with the vertical detector gives a 4x4 output whose middle columns (30) mark the edge. "
        "Computed now by <code>cnnkit.edges.detect(image, 'vertical', padding='valid')</code>, "
        "which calls <code>cnnkit.conv.conv2d</code>.</p>",
        "<div>",
        _table(image, "image (6x6)"),
        " <b>*</b> ",
        _table(vertical(), "vertical detector (3x3)"),
        " <b>=</b> ",
        _table(valid, "output (4x4)"),
        "</div>",
        "<div>",
        _figure("edges-course-input.png", "the 6x6 image"),
        _figure("edges-course-output.png", "the 4x4 output (red = positive edge)"),
        "</div>",
        "<p>With zero padding p = 1 the image becomes 8x8 and the output keeps the 6x6 size "
        "(n + 2p - f + 1 = 6); the padding zeros create the -30 column on the left border and "
        "weaker corners:</p>",
        _table(same, "padding=1, zeros (6x6)"),
    ]
    return "\n".join(parts)


def _photos(out_dir: Path) -> str:
    from cnnkit.edges import detect, is_signed, to_display
    from cnnkit.io import load_image, sample_path, save_image

    parts = ["<h3>Photographs shipped with scikit-image</h3>"]
    timings = []
    for name in _PHOTOS:
        image = load_image(sample_path(name))  # (H, W, 3) float32 in [0, 1]
        save_image(out_dir / f"edges-{name}.png", image)
        figures = [_figure(f"edges-{name}.png", f"{name} ({image.shape[1]}x{image.shape[0]})")]
        for kernel, caption in _PANELS:
            start = time.perf_counter()
            response = detect(image, kernel)
            timings.append(time.perf_counter() - start)
            file = f"edges-{name}-{kernel}.png"
            save_image(out_dir / file, to_display(response, signed=is_signed(kernel)))
            figures.append(_figure(file, caption))
        parts.append("<div>" + "\n".join(figures) + "</div>")
    threshold = 1.0
    binary = detect(load_image(sample_path("camera")), "sobel", threshold=threshold)
    save_image(out_dir / "edges-camera-threshold.png", to_display(binary))
    parts.append(
        "<div>"
        + _figure(
            "edges-camera-threshold.png",
            f"Sobel magnitude >= {threshold} (a brightness step of 0.25 or more)",
        )
        + "</div>"
    )
    parts.append(
        f"<p>Each map of a 512x512 image took {1000 * float(np.median(timings)):.0f} ms "
        "(median). Same commands: <code>cnnkit edges photo.jpg --kernel vertical</code>, "
        "<code>cnnkit edges photo.jpg --kernel sobel --threshold 0.5</code>.</p>"
    )
    return "\n".join(parts)


def build(out_dir: Path) -> str:
    """Write this section's PNGs into ``out_dir`` and return its HTML fragment."""
    out_dir = Path(out_dir)
    return _course_example(out_dir) + "\n" + _photos(out_dir)
