"""Edge detection with the course's kernels, computed by ``cnnkit.conv``.

>>> from cnnkit.edges import detect, to_display
>>> edges = detect(image, "sobel")                  # (H, W) gradient magnitude
>>> picture = to_display(detect(image, "vertical"))  # red/blue signed response on white
>>> learned = learn_kernel(images, targets)        # fit the nine numbers by gradient descent
"""

from cnnkit.edges.detect import (
    LUMA_601,
    detect,
    filter_image,
    is_signed,
    to_display,
    to_grayscale,
    views,
)
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
from cnnkit.edges.learn import LearnedKernel, learn_kernel

__all__ = [
    "GRADIENT_KERNELS",
    "KERNEL_NAMES",
    "LUMA_601",
    "LearnedKernel",
    "detect",
    "filter_image",
    "get_kernels",
    "horizontal",
    "is_signed",
    "laplacian",
    "learn_kernel",
    "prewitt",
    "scharr",
    "sobel",
    "to_display",
    "to_grayscale",
    "vertical",
    "views",
]
