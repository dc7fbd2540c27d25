"""The two scores of a stylised image: style distance (trained predictor) and content kept."""

from __future__ import annotations

import numpy as np

from cnnkit.io import load_image, sample_path
from cnnkit.style import FastStylizer, stylize_fast
from cnnkit.style.score import content_kept, style_distance


def test_scores_order_content_noise_and_stylised() -> None:
    stylizer = FastStylizer("fp32")
    C, S = sample_path("astronaut"), sample_path("coffee")
    c = load_image(C)
    noise = np.random.default_rng(0).random(c.shape, dtype=np.float32)
    G = stylize_fast(C, S, size=256, stylizer=stylizer).image
    assert content_kept(c, C) > 0.99  # the content keeps itself
    assert content_kept(noise, C) < 0.2
    assert content_kept(noise, C) < content_kept(G, C) < 0.99
    assert style_distance(S, S, stylizer) == 0.0
    assert style_distance(G, S, stylizer) < style_distance(c, S, stylizer)
