"""Demo section: face verification with a person database.

Enroll matplotlib's ``grace_hopper`` (one photo: one-shot) in a temporary database, then verify a
transformed copy of it (rotated, brighter, cropped: should match) and scikit-image's
``astronaut`` (should not), showing the aligned 150x150 chips the encoder sees and the distances.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import numpy as np

TITLE = "Face verification and recognition (cnnkit face)"


def _transformed(path: Path) -> np.ndarray:
    """grace_hopper rotated 6 degrees, 20% brighter, and cropped: (H, W, 3) uint8."""
    from PIL import Image, ImageEnhance

    from cnnkit.io import load_image_pil

    img = load_image_pil(path)
    img = img.rotate(6, resample=Image.Resampling.BILINEAR)
    img = ImageEnhance.Brightness(img).enhance(1.2)
    w, h = img.size
    return np.asarray(img.crop((w // 10, h // 12, w - w // 12, h - h // 10)), dtype=np.uint8)


def _boxed(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of the image with the (top, right, bottom, left) box drawn in green."""
    out = image.copy()
    top, right, bottom, left = box
    t = max(2, image.shape[0] // 200)
    green = np.array([40, 220, 40], np.uint8)
    out[top : top + t, left:right] = green
    out[bottom - t : bottom, left:right] = green
    out[top:bottom, left : left + t] = green
    out[top:bottom, right - t : right] = green
    return out


def build(out_dir: Path) -> str:
    """Write this section's PNGs into ``out_dir`` and return its HTML fragment."""
    from cnnkit.face.descriptors import DEFAULT_PIPELINE
    from cnnkit.face.gallery import Gallery
    from cnnkit.face.pipeline import default_encoder
    from cnnkit.face.recognize import load, one_face, verify
    from cnnkit.io import sample_path, save_image

    out_dir = Path(out_dir)
    encoder = default_encoder()
    grace_path = sample_path("grace_hopper")
    photos = {
        "enrolled: grace_hopper": load(grace_path),
        "query: grace_hopper rotated, brighter, cropped": _transformed(grace_path),
        "query: astronaut": load(sample_path("astronaut")),
    }
    found = {k: one_face(img, 1, encoder, largest=True) for k, img in photos.items()}
    names = list(photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Gallery(Path(tmp) / "demo.sqlite3") as db:
        db.add(
            "Grace Hopper",
            found[names[0]].embedding,
            model_id=encoder.model_id,
            sources=[grace_path.name],
            pipeline=DEFAULT_PIPELINE,  # what one_face made it with; verify then uses it too
        )
        tau = db.tolerance()
        for key in names[1:]:
            match, d = verify(photos[key], "Grace Hopper", db, encoder=encoder)
            rows.append((key, d, match))
    figures = []
    for i, key in enumerate(names):
        save_image(out_dir / f"face-photo-{i}.png", _boxed(photos[key], found[key].box))
        save_image(out_dir / f"face-chip-{i}.png", found[key].chip)
        figures.append(
            f'<figure><img src="face-photo-{i}.png" alt="{html.escape(key)}" '
            f'style="max-height:220px"><img src="face-chip-{i}.png" alt="aligned chip" '
            f'style="max-height:150px"><figcaption>{html.escape(key)}</figcaption></figure>'
        )
    table = "".join(
        f"<tr><td style='text-align:left'>{html.escape(key)}</td><td>{d:.3f}</td>"
        f"<td>{'match' if match else 'no match'}</td></tr>"
        for key, d, match in rows
    )
    return (
        "<p>One photo enrolls a person (one-shot learning). Each photo goes through HOG "
        "detection (green box), 5 landmarks and dlib's alignment to the 150x150 chip shown "
        "beside it; dlib's face ResNet maps the chip (and a second one aligned from 68 "
        "landmarks, and both mirrored) to 128 numbers, and a second network, FaceNet, maps an "
        "upright crop of the face to 128 more: together they are f, and two photos show the "
        f"same person when ||f(a) - f(b)|| &le; &tau; = {tau:.2f}.</p>\n"
        + "\n".join(figures)
        + "\n<table><tr><th>verify as Grace Hopper</th><th>distance</th><th>verdict</th></tr>"
        + table
        + '</table>\n<p>Commands: <code>cnnkit face enroll "Grace Hopper" grace.jpg</code>, '
        '<code>cnnkit face verify photo.jpg --as "Grace Hopper"</code>.</p>'
    )
