"""Reading and writing images.

``load_image`` returns an (H, W, 3) float32 RGB array in [0, 1] whatever the file holds: it honours
EXIF orientation and converts L, LA, P, RGBA (composited on white), CMYK, I;16 and I (an
animated GIF or WebP gives its first frame). Pillow's decompression-bomb guard stays on: a file
over :data:`MAX_IMAGE_PIXELS` pixels is refused with a clear error instead of exhausting memory.

HEIC/HEIF (iPhone photos) is read when the optional ``pillow-heif`` package is installed; without
it such a file is refused with an error that says so (and what to do), not as "unknown format".
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnkit.errors import ImageReadError, first_line
from cnnkit.io.atomic import atomic_write

log = logging.getLogger(__name__)

#: Largest image, in pixels, that is decoded (Pillow's own default guard is ~89 Mpx; we keep it).
MAX_IMAGE_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485

#: What a folder is expanded to. HEIC/HEIF are listed so that a folder of iPhone photos reports
#: them (read with pillow-heif, or refused with a clear error) instead of skipping them silently.
IMAGE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".avif",
    ".heic",
    ".heif",
)

#: ISO base media "ftyp" brands of HEIF still images (HEVC-coded: what iPhones write).
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


@lru_cache(maxsize=1)
def _register_heif() -> bool:
    """Let Pillow open HEIC/HEIF through ``pillow-heif`` when it is installed (once); whether
    it is."""
    try:
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_heif_opener()
    return True


def _is_heif(head: bytes) -> bool:
    """Whether file bytes start like a HEIF image (``....ftyp<brand>``; AVIF is not counted:
    Pillow reads it)."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _head(source: Path | io.BytesIO) -> bytes:
    if isinstance(source, io.BytesIO):
        return source.getvalue()[:12]
    try:
        with open(source, "rb") as f:
            return f.read(12)
    except OSError:
        return b""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (alpha composited on white, 16/32-bit rescaled)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
        if mode == "I" and arr.min() >= 0 and arr.max() <= 65535:
            lo, hi = 0.0, 65535.0 if arr.max() > 255 else 255.0
        scale = (hi - lo) or 1.0
        arr8 = np.clip((arr - lo) / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image_pil(path: str | Path) -> Image.Image:
    """Open ``path`` as an 8-bit RGB Pillow image, upright according to its EXIF orientation.

    Raises:
        ImageReadError: missing, unreadable, corrupt, truncated, or larger than the pixel guard.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError("no such file", path=path, hint="check the path")
    if path.is_dir():
        raise ImageReadError("is a folder, not an image", path=path, hint="give an image file")
    return _decode(path, path, MAX_IMAGE_PIXELS)


def decode_image(
    data: bytes, *, name: str | None = None, max_pixels: int = MAX_IMAGE_PIXELS
) -> Image.Image:
    """Decode image bytes held in memory (an upload) as :func:`load_image_pil` does a file.

    Nothing is written to disk. ``max_pixels`` (at most Pillow's own guard) refuses a
    decompression bomb before its pixels are decoded; the ImageReadError's ``__cause__`` is
    then a ``DecompressionBombError``, and ``UnidentifiedImageError`` for data that is no image.
    """
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(source: Path | io.BytesIO, label: str | Path | None, max_pixels: int) -> Image.Image:
    _register_heif()
    try:
        # Pillow's other warnings (e.g. "Corrupt EXIF data" on an image that decodes fine) go to
        # the debug log instead of printing multi-line warnings around the CLI's output.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(source) as opened:
                    if opened.width * opened.height > max_pixels:
                        raise Image.DecompressionBombError(
                            f"{opened.width}x{opened.height} = {opened.width * opened.height:,}"
                            f" pixels, over the limit of {max_pixels:,}"
                        )
                    opened.load()
                    upright: Image.Image = ImageOps.exif_transpose(opened) or opened
                    return _to_rgb(upright)
            finally:
                for w in caught:
                    log.debug("%s: %s", label, w.message)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(
            f"image too large ({exc})".replace("\n", " "),
            path=label,
            hint=f"resize it below {max_pixels:,} pixels first",
        ) from exc
    except UnidentifiedImageError as exc:
        if _is_heif(_head(source)):
            raise ImageReadError(
                "a HEIC/HEIF photo, which this installation cannot decode",
                path=label,
                hint="pip install pillow-heif, or export it as JPEG",
            ) from exc
        raise ImageReadError(
            "not a readable image (unknown or corrupt format)",
            path=label,
            hint="give a JPEG, PNG, BMP, GIF, TIFF or WebP file",
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        reason = first_line(exc)
        raise ImageReadError(
            f"not a readable image ({reason})",
            path=label,
            hint="the file may be truncated or corrupt; re-export it",
        ) from exc


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an (H, W, 3) float32 RGB array with values in [0, 1]."""
    img = load_image_pil(path)
    return np.asarray(img, dtype=np.float32) / 255.0


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Map a float array in [0, 1] (clipped) to uint8 [0, 255], rounding to nearest."""
    if array.dtype == np.uint8:
        return array
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(
    path: str | Path, array: np.ndarray | Image.Image, format: str | None = None
) -> Path:
    """Save an (H, W), (H, W, 3) or (H, W, 4) array (float in [0, 1] or uint8) atomically.

    The format follows the suffix (PNG when unknown). Returns the path written.
    """
    path = Path(path)
    fmt = format or Image.registered_extensions().get(path.suffix.lower(), "PNG")
    data = encode_image(array, fmt)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def encode_image(array: np.ndarray | Image.Image, format: str = "PNG", **options: Any) -> bytes:
    """An (H, W), (H, W, 3) or (H, W, 4) array (float in [0, 1] or uint8) as file bytes in memory
    (PNG by default; ``options`` go to Pillow, e.g. ``quality=90`` for JPEG)."""
    img = array if isinstance(array, Image.Image) else Image.fromarray(to_uint8(np.asarray(array)))
    buffer = io.BytesIO()
    img.save(buffer, format=format, **options)
    return buffer.getvalue()


def array_to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, C) or (H, W) -> (1, C, H, W), contiguous."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


def nchw_to_array(x: np.ndarray) -> np.ndarray:
    """(1, C, H, W) -> (H, W, C); a single channel gives (H, W)."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) array, got shape {x.shape}")
    out = x[0].transpose(1, 2, 0)
    return out[:, :, 0] if out.shape[2] == 1 else np.ascontiguousarray(out)


def list_images(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of image files (by suffix)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(q for q in sorted(p.glob(pattern)) if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(p)
    return found
