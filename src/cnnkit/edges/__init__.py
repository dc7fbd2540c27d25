"""Edge detection with the course's kernels, computed by ``cnnkit.conv``.

>>> from cnnkit.edges import detect, to_display
>>> edges = detect(image, "sobel")                  # (H, W) gradient magnitude
>>> picture = to_display(detect(image, "vertical"))  # red/blue signed response on white
"""

from cnnkit.edges.detect import LUMA_601, detect, filter_image, is_signed, to_display, to_grayscale
from cnnkit.edges.kernels import (
    GRADIENT_KERNELS,
    KERNEL_NAMES,
    get_kernels,
    horizontal,
    laplacian,
    prewitt,
    scharr,
    sobel,
    vertical,
)

__all__ = [
    "GRADIENT_KERNELS",
    "KERNEL_NAMES",
    "LUMA_601",
    "detect",
    "filter_image",
    "get_kernels",
    "horizontal",
    "is_signed",
    "laplacian",
    "prewitt",
    "scharr",
    "sobel",
    "to_display",
    "to_grayscale",
    "vertical",
]
