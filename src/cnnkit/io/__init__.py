"""Images in and out: Pillow decode with EXIF orientation and mode conversion, a size guard,
atomic saves, and conversions to/from NCHW float arrays and tensors."""

from cnnkit.io.atomic import atomic_write, atomic_write_bytes, check_writable
from cnnkit.io.hashing import file_sha256
from cnnkit.io.image import (
    MAX_IMAGE_PIXELS,
    array_to_nchw,
    encode_image,
    list_images,
    load_image,
    load_image_pil,
    nchw_to_array,
    save_image,
    to_uint8,
)
from cnnkit.io.samples import SAMPLE_NAMES, sample_path

__all__ = [
    "MAX_IMAGE_PIXELS",
    "SAMPLE_NAMES",
    "array_to_nchw",
    "atomic_write",
    "atomic_write_bytes",
    "check_writable",
    "encode_image",
    "file_sha256",
    "list_images",
    "load_image",
    "load_image_pil",
    "nchw_to_array",
    "sample_path",
    "save_image",
    "to_uint8",
]
