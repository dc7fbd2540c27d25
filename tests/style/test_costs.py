"""Cost functions against hand-computed values on tiny tensors, and float64 gradient checks."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import ShapeError
from cnnkit.style.costs import (
    content_cost,
    gram_matrix,
    layer_style_cost,
    style_cost,
    total_cost,
    total_variation,
)


def _a() -> torch.Tensor:
    # (N=1, n_C=2, n_H=2, n_W=2): channel 0 = [[1, 2], [3, 4]], channel 1 = [[0, 1], [0, 1]]
    return torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])


def test_gram_matrix_by_hand() -> None:
    # G_00 = 1+4+9+16 = 30, G_01 = 0+2+0+4 = 6, G_11 = 0+1+0+1 = 2
    G = gram_matrix(_a())
    assert G.shape == (1, 2, 2)
    assert torch.equal(G[0], torch.tensor([[30.0, 6.0], [6.0, 2.0]]))


def test_gram_matrix_batched_matches_per_image(rng) -> None:
    a = torch.from_numpy(rng.standard_normal((3, 4, 5, 6)))
    G = gram_matrix(a)
    for n in range(3):
        A = a[n].reshape(4, 30)
        torch.testing.assert_close(G[n], A @ A.T)


def test_content_cost_by_hand() -> None:
    # sum of squares = (1+4+9+16) + (0+1+0+1) = 32; 4 n_H n_W n_C = 32
    assert float(content_cost(_a(), torch.zeros(1, 2, 2, 2))) == pytest.approx(1.0)
    assert float(content_cost(_a(), _a())) == 0.0


def test_layer_style_cost_by_hand() -> None:
    # G(S) = [[30, 6], [6, 2]], G(G) = 0: sum G^2 = 900 + 36 + 36 + 4 = 976; (2*2*2*2)^2 = 256
    cost = layer_style_cost(_a(), torch.zeros(1, 2, 2, 2))
    assert float(cost) == pytest.approx(976 / 256)
    assert float(layer_style_cost(_a(), _a())) == 0.0


def test_layer_style_cost_different_sizes_rescales_gram() -> None:
    # A style map tiled twice along W has twice the Gram; rescaled per position it equals G(S).
    a = _a()
    a_S = torch.cat([a, a], dim=3)  # (1, 2, 2, 4)
    assert float(layer_style_cost(a_S, a)) == pytest.approx(0.0, abs=1e-12)
    assert float(layer_style_cost(a_S, torch.zeros_like(a))) == pytest.approx(976 / 256)


def test_style_cost_weights() -> None:
    costs = [torch.tensor(2.0), torch.tensor(4.0)]
    assert float(style_cost(costs)) == pytest.approx(3.0)
    assert float(style_cost(costs, [0.25, 1.0])) == pytest.approx(4.5)
    with pytest.raises(ShapeError, match="one weight per style layer"):
        style_cost(costs, [1.0])


def test_total_variation_by_hand() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    # vertical diffs 2, 3 -> mean 6.5; horizontal diffs 1, 2 -> mean 2.5
    assert float(total_variation(x)) == pytest.approx(9.0)


def test_total_cost() -> None:
    J = total_cost(torch.tensor(1.0), torch.tensor(2.0), alpha=10, beta=40)
    assert float(J) == pytest.approx(90.0)
    J = total_cost(torch.tensor(1.0), torch.tensor(2.0), 10, 40, tv=torch.tensor(3.0), tv_weight=2)
    assert float(J) == pytest.approx(96.0)


def test_shape_errors() -> None:
    with pytest.raises(ShapeError, match="same shape"):
        content_cost(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 3, 2))
    with pytest.raises(ShapeError, match="n_C"):
        gram_matrix(torch.zeros(2, 2, 2))
    with pytest.raises(ShapeError, match=r"same \(N, n_C\)"):
        layer_style_cost(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))


def test_gradcheck_float64(rng) -> None:
    a_C = torch.from_numpy(rng.standard_normal((1, 3, 4, 5)))
    a_S = torch.from_numpy(rng.standard_normal((1, 3, 3, 6)))
    a_G = torch.from_numpy(rng.standard_normal((1, 3, 4, 5))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g: content_cost(a_C, g), (a_G,))
    assert torch.autograd.gradcheck(gram_matrix, (a_G,))
    assert torch.autograd.gradcheck(lambda g: layer_style_cost(a_S, g), (a_G,))
    assert torch.autograd.gradcheck(total_variation, (a_G,))

    def J(g: torch.Tensor) -> torch.Tensor:
        Js = style_cost([layer_style_cost(a_S, g), layer_style_cost(a_S[:, :, :2], g)], [0.3, 0.7])
        return total_cost(content_cost(a_C, g), Js, 10, 40, tv=total_variation(g), tv_weight=0.5)

    assert torch.autograd.gradcheck(J, (a_G,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lean_gram_cost_equals_autograd_of_the_plain_one(monkeypatch, dtype) -> None:
    """The sliced Gram cost (large images) against autograd through gram_style_cost: same J,
    same dJ/da, in slices of 3 rows (11 rows: a ragged last slice), the gradient in a's dtype."""
    from cnnkit.style import costs

    torch.manual_seed(0)
    a = torch.randn(1, 5, 11, 7).to(dtype)
    G_S = costs.gram_matrix(torch.randn(1, 5, 11, 7))
    plain_a = a.detach().clone().requires_grad_(True)
    J_plain = costs.gram_style_cost(G_S, plain_a.float())
    J_plain.backward()
    monkeypatch.setattr(costs, "SLICE_VALUES", 0)
    lean_a = a.detach().clone().requires_grad_(True)
    J_lean = costs.gram_style_cost_lean(G_S, lean_a, rows=3)
    (2 * J_lean).backward()  # the incoming gradient is used
    torch.testing.assert_close(J_lean, J_plain, rtol=1e-5, atol=0)
    assert lean_a.grad is not None and plain_a.grad is not None
    assert lean_a.grad.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(lean_a.grad.float(), 2 * plain_a.grad.float(), rtol=tol, atol=tol)
    sliced = costs.gram_matrix_sliced(a, rows=3)
    torch.testing.assert_close(sliced, costs.gram_matrix(a.float()), rtol=1e-5, atol=1e-4)
