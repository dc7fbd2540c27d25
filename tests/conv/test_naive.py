"""The vectorised engine agrees with the naive loop oracle (and the oracle with torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.conv import avg_pool2d, conv2d, conv2d_backward, max_pool2d
from cnnkit.conv.naive import conv2d_backward_naive, conv2d_naive, pool2d_naive

CASES = [
    # c, h, w, o, fh, fw, stride, padding
    (1, 6, 6, 1, 3, 3, 1, 0),
    (3, 7, 5, 2, 3, 2, 2, 1),
    (2, 6, 7, 3, 2, 2, 1, "same"),
    (34, 5, 6, 2, 3, 3, (1, 2), (2, 0)),
]


@pytest.mark.parametrize("case", CASES)
def test_conv2d_matches_naive(case, rng):
    c, h, w, o, fh, fw, stride, padding = case
    x = rng.standard_normal((2, c, h, w))
    wt = rng.standard_normal((o, c, fh, fw))
    b = rng.standard_normal(o)
    y = conv2d(x, wt, b, stride, padding)
    np.testing.assert_allclose(y, conv2d_naive(x, wt, b, stride, padding), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    for mine, ref in zip(
        conv2d_backward(g, x, wt, stride, padding),
        conv2d_backward_naive(g, x, wt, stride, padding),
        strict=True,
    ):
        np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-10)


def test_naive_oracle_matches_torch(rng):
    x, wt = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 3, 2))
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(wt), stride=2, padding=1)
    np.testing.assert_allclose(conv2d_naive(x, wt, None, 2, 1), ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1))])
def test_pools_match_naive(k, s, p, rng):
    x = rng.standard_normal((2, 3, 7, 8))
    np.testing.assert_allclose(max_pool2d(x, k, s, p), pool2d_naive(x, k, s, p, "max"))
    np.testing.assert_allclose(avg_pool2d(x, k, s, p), pool2d_naive(x, k, s, p, "avg"))
