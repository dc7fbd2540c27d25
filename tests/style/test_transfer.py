"""transfer(): a tiny run lowers J, the seed fixes the output, bad options fail clearly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.errors import CnnkitError, NotFoundError, ShapeError
from cnnkit.style import DivergedError, StyleConfig, transfer
from cnnkit.style.images import _luminance_only, rgb_to_yiq, yiq_to_rgb
from tests.isa import run_forced

# 48 px, shallow layers: a few tenths of a second per iteration on one core
SMALL = StyleConfig(
    size=48,
    iterations=6,
    content_layer="conv2_2",
    style_layers=("conv1_1", "conv2_1", "conv3_1"),
    backbone="random-vgg19",
)


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:56] / 40.0
    content = np.stack([x / 1.4, y, 0.5 + 0.5 * np.sin(6 * x)], axis=2).astype(np.float32)
    style = rng.random((30, 30, 3)).astype(np.float32)  # another size and aspect
    return content, style


def test_tiny_transfer_lowers_the_cost(images) -> None:
    content, style = images
    image, history = transfer(content, style, SMALL, init="content+noise")
    assert image.shape == (34, 48, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert len(history.total) == SMALL.iterations
    assert history.total[-1] < 0.8 * history.total[0]
    assert history.backbone == "random-vgg19"
    np.testing.assert_allclose(
        np.array(history.total),
        np.array(history.content) + np.array(history.style) + np.array(history.tv),
        rtol=1e-5,
    )


def test_same_seed_same_output(images) -> None:
    content, style = images
    a, _ = transfer(content, style, SMALL, init="noise", iterations=3, seed=5)
    b, _ = transfer(content, style, SMALL, init="noise", iterations=3, seed=5)
    c, _ = transfer(content, style, SMALL, init="noise", iterations=3, seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_adam_blend_tv_and_colours(images) -> None:
    content, style = images
    gray_style = style.mean(axis=2)  # (H, W): converted to RGB
    image, history = transfer(
        content,
        [style, gray_style],
        SMALL,
        optimizer="adam",
        iterations=3,
        style_blend_weights=[3, 1],
        tv_weight=10.0,
        preserve_colors=True,
    )
    assert image.shape == (34, 48, 3)
    assert all(t > 0 for t in history.tv)


def test_yiq_round_trip_and_luminance() -> None:
    x = torch.rand(1, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x)
    gray = _luminance_only(x)
    assert torch.equal(gray[:, 0], gray[:, 2])


def test_nan_loss_stops_with_advice(images) -> None:
    content, style = images
    with pytest.raises(DivergedError, match=r"--lr or --beta"):
        transfer(content, style, SMALL, iterations=3, beta=1e39)


def test_bad_options(images) -> None:
    content, style = images
    with pytest.raises(NotFoundError, match="valid names"):
        transfer(content, style, SMALL, content_layer="conv6_1")
    with pytest.raises(ShapeError, match="one --style-layer-weights"):
        transfer(content, style, SMALL, style_layer_weights=[1.0])
    with pytest.raises(ShapeError, match="one --style-blend-weights"):
        transfer(content, [style, style], SMALL, style_blend_weights=[1.0])
    with pytest.raises(CnnkitError, match="optimizer"):
        transfer(content, style, SMALL, optimizer="sgd")


def test_multiscale_runs_coarse_then_fine(images, capsys) -> None:
    """Two scales, 64 -> 128 px, a quarter of the iterations at the fine one; the bar names them."""
    from cnnkit.progress import is_quiet, set_quiet

    content, style = images
    quiet = is_quiet()
    set_quiet(False)
    try:
        image, history = transfer(content, style, SMALL, size=128, iterations=4, multiscale=True)
    finally:
        set_quiet(quiet)
    assert image.shape == (91, 128, 3)
    assert history.scales == [(64, 4), (128, 1)]
    assert history.iteration == [1, 2, 3, 4, 5]
    err = capsys.readouterr().err
    assert "scale 1/2 (64 px)" in err and "scale 2/2 (128 px)" in err


def test_scale_schedule_halves_down_to_the_base_size() -> None:
    from cnnkit.style.config import scale_schedule

    assert scale_schedule(StyleConfig(size=512, iterations=300)) == [(512, 300)]
    assert scale_schedule(StyleConfig(size=1024)) == [(1024, 300)]
    assert scale_schedule(StyleConfig(size=2048, iterations=300)) == [
        (512, 300),
        (1024, 75),
        (2048, 18),
    ]
    assert scale_schedule(StyleConfig(size=1500, iterations=8)) == [(375, 8), (750, 2), (1500, 1)]
    assert scale_schedule(StyleConfig(size=48, multiscale=True, iterations=3)) == [(48, 3)]


def test_swirl_painting_is_seeded() -> None:
    from cnnkit.style.paint import swirl_painting

    a, b, c = swirl_painting(32, seed=1), swirl_painting(32, seed=1), swirl_painting(32, seed=2)
    assert a.shape == (32, 32, 3) and a.dtype == np.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_large_content_is_resized_with_a_note(images, caplog) -> None:
    import logging

    content, style = images
    big = np.repeat(np.repeat(content, 4, axis=0), 4, axis=1)  # (160, 224, 3)
    with caplog.at_level(logging.INFO, logger="cnnkit.style"):
        image, history = transfer(big, style, SMALL, iterations=0)
    assert image.shape == (34, 48, 3) and history.total == []
    assert "resized to 48x34" in caplog.text
    assert "ImageNet weights give better results" in caplog.text  # the offline notice


def test_bf16_path_runs_with_fp32_costs(images) -> None:
    content, style = images
    image, history = transfer(content, style, SMALL, iterations=2, precision="bf16")
    assert image.dtype == np.float32 and np.isfinite(image).all()
    assert all(np.isfinite(history.total))
    assert history.compute.startswith("bf16")
    _, cl_history = transfer(
        content, style, SMALL, iterations=2, precision="bf16", channels_last=True
    )
    assert "channels-last" in cl_history.compute


def test_compute_path_follows_the_options_and_the_cpu(monkeypatch) -> None:
    import importlib

    module = importlib.import_module("cnnkit.style.transfer")  # the package exports transfer()
    cpu = torch.device("cpu")
    for native, cap in ((False, "AVX2"), (False, "AVX512"), (True, "AVX512"), (True, "AMX")):
        monkeypatch.setattr(module, "bf16_native", lambda device, n=native: n)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=cap: c)
        bf16, cl, text = module.compute_path(StyleConfig(), cpu)  # auto, auto
        assert (bf16, cl) == (native, cap != "AVX2")
        assert ("no native bf16" in text) == (not native) and cap in text
        assert module.compute_path(StyleConfig(precision="fp32"), cpu)[0] is False
        assert module.compute_path(StyleConfig(precision="bf16"), cpu)[0] is True
        explicit = StyleConfig(precision="bf16", channels_last=False)
        assert module.compute_path(explicit, cpu)[:2] == (True, False)
        assert module.compute_path(StyleConfig(channels_last=True), cpu)[1] is True
    assert module.compute_path(StyleConfig(), torch.device("meta"))[1] is False  # not a CPU


def test_auto_precision_is_bf16_where_cnnkit_cpu_says_native() -> None:
    """Both style methods take bf16 on ``auto`` exactly where :func:`cnnkit.cpu.bf16_native`
    says so, here and in a Python with torch forced to AVX2 (not native to ATen: fp32, NCHW)."""

    from cnnkit.cpu import bf16_native
    from cnnkit.style.fast import FastStylizer
    from cnnkit.style.transfer import compute_path

    cpu = torch.device("cpu")
    native = bf16_native(cpu)
    bf16, _, text = compute_path(StyleConfig(), cpu)
    assert bf16 == native and ("no native bf16" in text) == (not native)
    assert FastStylizer("auto").precision == ("bf16" if native else "fp32")
    assert FastStylizer("auto", quant="ort").precision == "fp32"
    code = (
        "import torch; from cnnkit.style import StyleConfig; "
        "from cnnkit.style.fast import FastStylizer; "
        "from cnnkit.style.transfer import compute_path; "
        "print(repr((compute_path(StyleConfig(), torch.device('cpu')), "
        "FastStylizer('auto').precision)))"
    )
    out = run_forced(code, ATEN_CPU_CAPABILITY="avx2")
    path = (False, False, "fp32; NCHW; AVX2, no native bf16")
    assert out.stdout.strip() == repr((path, "fp32"))


def test_bf16_channels_last_objective_matches_the_fp32_one(images) -> None:
    """The bf16 path (bf16 network, channels-last maps, Gram matrices from bf16 matmuls summed
    in fp32, one-node style costs) against autograd through the plain costs (gram_matrix of
    fp32 copies), written out here, on the same weights and image: with the fp32 NCHW network,
    J within 2% and dJ/dG as close to it as the plain costs on bf16 maps get (bf16 maps alone
    cost a few % of the direction at this size); with the same bf16 network and the plain costs,
    J within 0.5% and dJ/dG close (what the fused, chunked, channels-last costs change)."""
    from cnnkit.style.backbone import build_extractor
    from cnnkit.style.costs import content_cost, gram_matrix, gram_style_cost
    from cnnkit.style.transfer import _Objective

    content, style = images
    C = torch.from_numpy(np.ascontiguousarray(content.transpose(2, 0, 1)[None]))
    S = torch.from_numpy(np.ascontiguousarray(style.transpose(2, 0, 1)[None]))
    config = replace(SMALL, content_layer="conv4_2", style_layers=("conv1_1", "conv3_1", "conv5_1"))
    layers = [config.content_layer, *config.style_layers]
    noise = torch.rand(C.shape, generator=torch.Generator().manual_seed(0))
    G = (0.7 * C + 0.3 * noise).clamp(0, 1)

    def plain(extractor) -> tuple[float, torch.Tensor]:
        with torch.no_grad():
            a_C, a_S = extractor(C), extractor(S)
            a_C = {k: v.float() for k, v in a_C.items()}
            a_S = {k: v.float() for k, v in a_S.items()}
        g = G.clone().requires_grad_(True)
        a_G = {k: v.float() for k, v in extractor(g).items()}
        zero = torch.zeros_like(a_C["conv4_2"])
        J = content_cost(a_C["conv4_2"], a_G["conv4_2"]) / content_cost(a_C["conv4_2"], zero)
        for name in config.style_layers:
            n_hw = a_C[name].shape[2] * a_C[name].shape[3]
            G_S = gram_matrix(a_S[name]) / (a_S[name].shape[2] * a_S[name].shape[3]) * n_hw
            lam = 1 / 3 / float(gram_style_cost(G_S, torch.zeros_like(a_C[name])))
            J = J + config.beta * lam * gram_style_cost(G_S, a_G[name])
        J.backward()
        assert g.grad is not None
        return float(J.detach()), g.grad.flatten()

    ref = build_extractor(layers, [C, S], backbone="random-vgg19").extractor
    J_ref, grad_ref = plain(ref)
    bf16 = build_extractor(layers, [C, S], backbone="random-vgg19").extractor.set_dtype(
        torch.bfloat16
    )
    J_bf16, grad_bf16 = plain(bf16)
    fast = build_extractor(layers, [C, S], backbone="random-vgg19", channels_last=True).extractor
    fast.set_dtype(torch.bfloat16)
    objective = _Objective(config, fast, C, [S], [1.0])
    G_fast = G.clone().requires_grad_(True)
    J_fast = objective(G_fast)[0]
    J_fast.backward()
    a = fast(G)[config.style_layers[0]]
    assert a.dtype == torch.bfloat16 and a.is_contiguous(memory_format=torch.channels_last)
    assert G_fast.grad is not None and G_fast.grad.dtype == torch.float32
    assert G_fast.grad.is_contiguous()  # what torch.optim.LBFGS needs
    grad = G_fast.grad.flatten()
    assert abs(float(J_fast.detach()) / J_ref - 1) < 0.02
    assert abs(float(J_fast.detach()) / J_bf16 - 1) < 0.005
    cos_bf16 = float(F.cosine_similarity(grad_bf16, grad_ref, dim=0))  # bf16 maps alone
    assert float(F.cosine_similarity(grad, grad_ref, dim=0)) > cos_bf16 - 0.01
    assert float(F.cosine_similarity(grad, grad_bf16, dim=0)) > 0.98
