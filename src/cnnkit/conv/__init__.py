"""cnnkit.conv: the NumPy convolution reference engine (NCHW, float32/float64).

Functions follow ``torch.nn.functional``; layers keep explicit caches for a backward pass.
"""

from cnnkit.conv.functional import (
    ConvCache,
    conv2d,
    conv2d_backward,
    conv2d_forward,
    convolve2d,
    pad,
)
from cnnkit.conv.shapes import output_size, same_padding

__all__ = [
    "ConvCache",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "convolve2d",
    "output_size",
    "pad",
    "same_padding",
]
