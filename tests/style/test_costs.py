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
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_gram_cost_equals_float64_autograd_of_the_plain_one(dtype, channels_last) -> None:
    """The one-node Gram cost against float64 autograd through gram_style_cost on the same
    values: same J, same dJ/da (the incoming gradient used), the gradient in a's dtype and
    memory format; bf16 summed over chunks of 16 positions (77: a ragged last chunk)."""
    from cnnkit.style import costs

    torch.manual_seed(0)
    a = torch.randn(1, 5, 11, 7).to(dtype)
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
    G_S = costs.gram_matrix(torch.randn(1, 5, 11, 7).double())
    ref_a = a.detach().double().contiguous().requires_grad_(True)
    J_ref = costs.gram_style_cost(G_S, ref_a)
    J_ref.backward()
    lean_a = a.detach().clone().requires_grad_(True)
    J_lean = costs.gram_style_cost_lean(G_S.float(), lean_a, chunk=16)
    (2 * J_lean).backward()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert J_lean.dtype == torch.float32
    torch.testing.assert_close(J_lean.double(), J_ref.detach(), rtol=tol, atol=0)
    grad = lean_a.grad
    assert grad is not None and ref_a.grad is not None
    assert grad.dtype == dtype
    assert grad.is_contiguous(memory_format=torch.channels_last) == channels_last
    scale = float(ref_a.grad.abs().max())
    torch.testing.assert_close(grad.double(), 2 * ref_a.grad, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("channels_last", [False, True])
def test_bf16_gram_in_chunks_is_close_to_the_exact_one(channels_last) -> None:
    """gram_matrix_fp32 of a bf16 map (bf16 matmuls over chunks, summed in fp32) against the
    float64 Gram matrix of the same bf16 values: within one bf16 rounding (2^-8), and on average
    at least twice closer than one bf16 matmul rounded once."""
    from cnnkit.style.costs import gram_matrix_fp32, gram_matrix_sliced

    torch.manual_seed(1)
    a = torch.rand(1, 16, 64, 64).bfloat16()  # non-negative, as ReLU maps
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last)
    exact = gram_matrix(a.double().contiguous())
    G = gram_matrix_fp32(a, chunk=256)
    assert G.dtype == torch.float32 and G.shape == (1, 16, 16)
    err = ((G.double() - exact).abs() / exact).mean()
    one = gram_matrix_fp32(a, chunk=64 * 64)  # one bf16 matmul: rounded once to bf16
    err_one = ((one.double() - exact).abs() / exact).mean()
    assert float(((G.double() - exact).abs() / exact).max()) < 2**-8
    assert float(err) < 2**-11 and float(err) < float(err_one) / 2
    torch.testing.assert_close(gram_matrix_sliced(a, rows=3).double(), exact, rtol=1e-6, atol=0)
    f32 = gram_matrix_fp32(a.float())
    torch.testing.assert_close(f32.double(), exact, rtol=1e-5, atol=0)
