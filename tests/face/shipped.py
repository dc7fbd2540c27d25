"""Face photos made from images that installed packages ship, for the face system's tests.

Same person: matplotlib's ``grace_hopper`` and transformed copies of it (mirror, crop, small
rotation, brightness). Impostor: scikit-image's ``astronaut``. No face: ``brick``. Two faces:
both photos side by side. A phone photo: Grace's face at ~700 px on a 4000x3000 brick wall
(:func:`phone_jpeg`: stored turned, with the EXIF orientation that shows it upright).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from cnnkit.io import sample_path


def grace() -> Image.Image:
    return Image.open(sample_path("grace_hopper")).convert("RGB")


def astronaut() -> Image.Image:
    return Image.open(sample_path("astronaut")).convert("RGB")


def variants(img: Image.Image) -> dict[str, Image.Image]:
    """Same-person copies: mirror, crop, 5 degree rotation, brighter."""
    w, h = img.size
    return {
        "flip": img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "crop": img.crop((w // 10, h // 12, w - w // 12, h - h // 10)),
        "rot": img.rotate(5, resample=Image.Resampling.BILINEAR),
        "bright": ImageEnhance.Brightness(img).enhance(1.25),
    }


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    out = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
    out.paste(a, (0, 0))
    out.paste(b, (a.width, 0))
    return out


#: Where HOG finds Grace's face in the 512x600 picture: (top, right, bottom, left).
GRACE_BOX = (137, 376, 352, 161)
#: The phone photo: Grace scaled by PHONE_SCALE (face ~710 px) pasted at PHONE_AT (x, y).
PHONE_SCALE, PHONE_AT = 3.3, (1200, 600)
#: EXIF orientation -> how the camera stored the upright picture (exif_transpose undoes it).
STORED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def phone_photo() -> Image.Image:
    """The upright 4000x3000 phone photo (see :func:`phone_face_centre`)."""
    g = grace()
    s = PHONE_SCALE
    big = g.resize((round(g.width * s), round(g.height * s)), Image.Resampling.BICUBIC)
    canvas = Image.open(sample_path("brick")).convert("RGB").resize((4000, 3000))
    canvas.paste(big, PHONE_AT)
    return canvas


def phone_face_centre() -> tuple[float, float]:
    """(y, x) of Grace's face centre in the upright phone photo."""
    t, r, b, left = GRACE_BOX
    x0, y0 = PHONE_AT
    return y0 + (t + b) / 2 * PHONE_SCALE, x0 + (r + left) / 2 * PHONE_SCALE


def phone_jpeg(orientation: int | None = None, **options) -> bytes:
    """The phone photo as JPEG bytes; with ``orientation`` (3, 6 or 8), stored turned and tagged
    so that a viewer that honours EXIF shows it upright. ``options`` go to Pillow's JPEG writer
    (``progressive=True``)."""
    upright = phone_photo()
    buffer = io.BytesIO()
    if orientation is None:
        upright.save(buffer, format="JPEG", quality=90, **options)
        return buffer.getvalue()
    stored = upright.transpose(STORED[orientation])
    exif = stored.getexif()
    exif[0x0112] = orientation
    stored.save(buffer, format="JPEG", quality=90, exif=exif.tobytes(), **options)
    return buffer.getvalue()


def write_photos(folder: Path) -> dict[str, Path]:
    """Write the test photos into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    g, a = grace(), astronaut()
    photos: dict[str, Image.Image] = {"grace": g, "astro": a}
    photos.update({f"grace_{k}": v for k, v in variants(g).items()})
    photos["astro_flip"] = variants(a)["flip"]
    photos["two"] = side_by_side(g, a)
    photos["noface"] = Image.open(sample_path("brick")).convert("RGB")
    paths = {}
    for name, im in photos.items():
        paths[name] = folder / f"{name}.png"
        im.save(paths[name])
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + bytes(200))
    paths["corrupt"] = corrupt
    return paths


def write_lfw_like(root: Path) -> Path:
    """A tiny LFW-format set: images/<Name>/<Name>_<iiii>.jpg and a 2-fold pairs.txt.

    Like LFW, each image is 250x250 with the face near the centre.
    """
    g = grace().crop((0, 0, 512, 512)).resize((250, 250))
    a = astronaut().crop((97, 1, 347, 251))
    people = {
        "Grace_Hopper": [g, *variants(g).values()],
        "Astro_Naut": [a, *list(variants(a).values())[:3]],
    }
    for name, imgs in people.items():
        (root / "images" / name).mkdir(parents=True, exist_ok=True)
        for i, im in enumerate(imgs, start=1):
            im.save(root / "images" / name / f"{name}_{i:04d}.jpg", quality=92)
    lines = ["2\t3"]
    lines += ["Grace_Hopper\t1\t2", "Grace_Hopper\t3\t4", "Astro_Naut\t1\t2"]
    lines += [
        "Grace_Hopper\t1\tAstro_Naut\t1",
        "Grace_Hopper\t2\tAstro_Naut\t2",
        "Grace_Hopper\t5\tAstro_Naut\t3",
    ]
    lines += ["Grace_Hopper\t1\t5", "Astro_Naut\t3\t4", "Astro_Naut\t1\t4"]
    lines += [
        "Grace_Hopper\t3\tAstro_Naut\t4",
        "Grace_Hopper\t4\tAstro_Naut\t1",
        "Grace_Hopper\t2\tAstro_Naut\t3",
    ]
    pairs = root / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    return pairs


def write_person_folder(root: Path) -> Path:
    """Grace Hopper (5 photos: enrolled + 4 mated searches); two one-photo strangers."""
    g = grace().crop((0, 0, 512, 512)).resize((250, 250))
    a = astronaut().crop((97, 1, 347, 251))
    people = {
        "Grace_Hopper": [g, *variants(g).values()],
        "Astro_Naut": [a],
        "Astro_Mirror": [variants(a)["flip"]],
    }
    for name, imgs in people.items():
        (root / name).mkdir(parents=True)
        for i, im in enumerate(imgs, start=1):
            im.save(root / name / f"{name}_{i:04d}.jpg", quality=92)
    return root


def chips_of(images: list[Image.Image]) -> np.ndarray:
    """Aligned 150x150 chips of the largest face of each image, (N, 150, 150, 3) uint8."""
    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import box_area, detect

    out = []
    for im in images:
        arr = np.asarray(im, dtype=np.uint8)
        box = max(detect(arr, 0), key=box_area)
        out.append(align_faces(arr, [box])[1][0])
    return np.stack(out)


def write_clip(path: Path, n_frames: int = 12, with_stranger: bool = False) -> Path:
    """A small video made with PyAV from the shipped photos: Grace Hopper's face moving right
    2 px per frame (256x256, 10 frames/s, MPEG-4); ``with_stranger`` puts the astronaut beside
    her (512x256)."""
    import av

    g = np.asarray(grace().crop((0, 0, 512, 512)).resize((256, 256)))
    a = np.asarray(astronaut().crop((97, 1, 347, 251)).resize((256, 256)))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = (512 if with_stranger else 256), 256
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 4_000_000
        for i in range(n_frames):
            frame = np.roll(g, 2 * i, axis=1)
            if with_stranger:
                frame = np.concatenate([frame, a], axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
