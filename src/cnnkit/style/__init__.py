"""Neural style transfer (Gatys et al.), in the notes' notation.

- :mod:`cnnkit.style.costs`: J_content, the Gram matrix, J_style[l], J_style, TV and J;
- :mod:`cnnkit.style.features`: a frozen, truncated VGG ``features`` stack returning a[l] by name;
- :mod:`cnnkit.style.backbone`: ImageNet VGG-19 from a weights file, or the offline random VGG-19;
- :mod:`cnnkit.style.config`: :class:`StyleConfig`, its checks, the loss :class:`History`;
- :mod:`cnnkit.style.images`: PIL images to NCHW tensors, YIQ luminance and recolouring;
- :mod:`cnnkit.style.transfer`: :func:`transfer`, the optimisation loop;
- :mod:`cnnkit.style.fast`: :func:`stylize_fast`, one feed-forward pass with Magenta's trained
  networks (:mod:`fast_nets` builds them, :mod:`fast_onnx` reads their weights from ONNX).

Example:
    >>> from cnnkit.io import sample_path, save_image
    >>> from cnnkit.style import transfer
    >>> image, history = transfer(sample_path("chelsea"), sample_path("gravel"), size=256,
    ...                           iterations=100)  # doctest: +SKIP
    >>> save_image("chelsea-gravel.png", image)  # doctest: +SKIP
"""

from cnnkit.style.backbone import BACKBONES, build_extractor, weights_notice
from cnnkit.style.costs import (
    content_cost,
    gram_matrix,
    gram_style_cost,
    layer_style_cost,
    style_cost,
    total_cost,
    total_variation,
)
from cnnkit.style.fast import FastResult, FastStylizer, stylize_fast
from cnnkit.style.features import FeatureExtractor, layer_indices
from cnnkit.style.transfer import (
    DEFAULT_STYLE_LAYERS,
    DivergedError,
    History,
    StyleConfig,
    transfer,
)

__all__ = [
    "BACKBONES",
    "DEFAULT_STYLE_LAYERS",
    "DivergedError",
    "FastResult",
    "FastStylizer",
    "FeatureExtractor",
    "History",
    "StyleConfig",
    "build_extractor",
    "content_cost",
    "gram_matrix",
    "gram_style_cost",
    "layer_indices",
    "layer_style_cost",
    "style_cost",
    "stylize_fast",
    "total_cost",
    "total_variation",
    "transfer",
    "weights_notice",
]
