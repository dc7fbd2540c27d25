"""Two numbers for a stylised image G: how much of S's style it has, how much of C it keeps.

- ``style_distance(G, S)``: ||P(G) - P(S)||_2 between the 100-d style vectors of the trained
  style-prediction network P (:mod:`cnnkit.style.fast`); lower = closer to the style. P carries
  ImageNet-derived features, so it scores without the random backbones the optimisation may use.
- ``content_kept(G, C)``: SSIM between the Sobel edge maps of G and C (:mod:`cnnkit.edges`), in
  [-1, 1]; higher = the content's structure (a face's eyes, mouth) survives.

Used by bench/style_losses.py to choose the offline default loss network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit.style.fast import FastStylizer, _pil


def style_distance(G: Any, S: Any, stylizer: FastStylizer | None = None) -> float:
    """||P(G) - P(S)||_2 for images G, S (paths, PIL images or (H, W, 3) arrays in [0, 1])."""
    stylizer = stylizer or FastStylizer("fp32")
    g = stylizer.style_vector(G, "generated")
    s = stylizer.style_vector(S, "style")
    return float((g - s).norm())


def content_kept(G: Any, C: Any) -> float:
    """SSIM of the Sobel edge maps of G and C (C resized to G's size first)."""
    from PIL import Image
    from skimage.metrics import structural_similarity

    from cnnkit.edges import detect

    g_img = _pil(G, "generated")
    c_img = _pil(C, "content").resize(g_img.size, Image.Resampling.LANCZOS)
    eg = detect(np.asarray(g_img, np.float32) / 255.0, "sobel")
    ec = detect(np.asarray(c_img, np.float32) / 255.0, "sobel")
    scale = max(float(np.percentile(ec, 99)), 1e-6)
    eg, ec = np.clip(eg / scale, 0, 1), np.clip(ec / scale, 0, 1)
    return float(structural_similarity(eg, ec, data_range=1.0))
