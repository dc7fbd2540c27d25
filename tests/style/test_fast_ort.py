"""The onnxruntime emulation (cnnkit.style.fast_ort): each kernel against onnxruntime itself."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from cnnkit.errors import CnnkitError
from cnnkit.style import fast_ort
from cnnkit.style.fast import FastStylizer
from cnnkit.style.fast_onnx import model_file


def _run(
    nodes, inputs: dict[str, np.ndarray], inits: dict[str, np.ndarray], out_type
) -> np.ndarray:
    """One small graph through onnxruntime's CPU session, optimisations off, one thread."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", out_type, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


@pytest.mark.parametrize(
    ("cin", "cout", "k", "size", "stride"),
    [(32, 32, 3, 42, 1), (3, 8, 9, 48, 1), (16, 32, 3, 41, 2), (160, 96, 1, 8, 1)],
)
def test_float_conv_rounds_like_onnxruntime(cin, cout, k, size, stride) -> None:
    """Conv then QuantizeLinear in float32: the same codes as onnxruntime, where rounding the
    float64 value (a different summation order) does not give them all (K > 128 splits the sum
    in blocks; the last case, N = 64 outputs < K, uses blocks of 256)."""
    rng = np.random.default_rng(k * cin)
    x = (rng.integers(0, 256, (1, cin, size, size)) * np.float32(0.0235294)).astype(np.float32)
    w = (rng.integers(-127, 128, (cout, cin, k, k)) * np.float32(0.0031)).astype(np.float32)
    b = rng.normal(0, 0.5, cout).astype(np.float32)
    y64 = torch.nn.functional.conv2d(
        torch.from_numpy(x).double(), torch.from_numpy(w).double(), torch.from_numpy(b).double(),
        stride=stride,
    )  # fmt: skip
    scale = np.float32(y64.std().item() / 40)  # +-3 sigma inside the int8 range
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], strides=[stride, stride]),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"]),
    ]
    inits = {"w": w, "b": b, "s": scale, "z": np.int8(3)}
    ref = _run(nodes, {"x": x}, inits, TensorProto.INT8).astype(np.float32)
    ours = fast_ort.float_conv_codes(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), stride, float(scale), 3
    ).numpy()
    assert np.array_equal(ours, ref)
    assert np.ptp(ref) > 200
    # the float32 sums themselves, bit for bit, at sampled outputs: MLAS's order, not float64's
    only_conv = [helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride, stride])]
    conv = _run(only_conv, {"x": x}, {"w": w, "b": b}, TensorProto.FLOAT)[0].reshape(cout, -1)
    cols = torch.nn.functional.unfold(torch.from_numpy(x), k, stride=stride)[0]  # (K, N)
    n = cols.shape[1]
    co = torch.from_numpy(rng.integers(0, cout, 400))
    pos = torch.from_numpy(rng.integers(0, n, 400))
    block = fast_ort.sgemm_stride_k(cin * k * k, n)
    wrow = torch.from_numpy(w.reshape(cout, -1))[co]
    exact = fast_ort.sgemm_dot(wrow, cols[:, pos].T, block) + torch.from_numpy(b)[co]
    assert np.array_equal(exact.numpy(), conv[co, pos])
    plain = (wrow.double() * cols[:, pos].T.double()).sum(1).float() + torch.from_numpy(b)[co]
    assert not np.array_equal(plain.numpy(), conv[co, pos])


@pytest.mark.parametrize(("groups", "pads", "stride"), [(24, (1, 1, 1, 1), 1), (1, (0, 0, 0, 0), 1),
                                                         (24, (0, 0, 1, 1), 2)])  # fmt: skip
def test_integer_conv_equals_qlinearconv(groups, pads, stride) -> None:
    rng = np.random.default_rng(groups + stride)
    cin, cout = 24, 24 if groups > 1 else 40
    k = 3 if groups > 1 else 1
    x = rng.integers(0, 256, (1, cin, 17, 17)).astype(np.uint8)
    w = rng.integers(-127, 128, (cout, cin // groups, k, k)).astype(np.int8)
    sw = rng.uniform(0.001, 0.01, cout).astype(np.float32)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    sx, zx, sy, zy = np.float32(0.0235294), np.uint8(7), np.float32(0.05), np.uint8(120)
    node = helper.make_node(
        "QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"], ["y"],
        group=groups, pads=list(pads[:2] + pads[2:]), strides=[stride, stride],
    )  # fmt: skip
    inits = {"sx": sx, "zx": zx, "w": w, "sw": sw, "zw": np.zeros(cout, np.int8), "sy": sy,
             "zy": zy, "b": bias}  # fmt: skip
    ref = _run([node], {"x": x}, inits, TensorProto.UINT8).astype(np.float32) - 128
    params = {"weight": torch.from_numpy(w.astype(np.float64)), "scale": sw,
              "bias": torch.from_numpy(bias.astype(np.float64))}  # fmt: skip
    codes = torch.from_numpy(x.astype(np.float64) - float(zx))
    # onnxruntime's pads are (top, left, bottom, right); cnnkit's ConvSpec uses the same order
    ours = fast_ort.int_conv_codes(codes, params, stride, pads, groups, float(sx), float(sy), -8)
    assert np.array_equal(ours.numpy(), ref)


@pytest.mark.parametrize("zero", [9, -128])
def test_qgap_equals_qlinear_global_average_pool(zero) -> None:
    rng = np.random.default_rng(zero + 128)
    x = np.clip(rng.normal(zero + 20, 40, (1, 32, 96, 96)).round(), -128, 127).astype(np.int8)
    si, so, zo = np.float32(0.0195974), np.float32(0.00803222), np.int8(1)
    node = helper.make_node(
        "QLinearGlobalAveragePool", ["x", "si", "zi", "so", "zo"], ["y"],
        domain="com.microsoft", channels_last=0,
    )  # fmt: skip
    ref = _run([node], {"x": x}, {"si": si, "zi": np.int8(zero), "so": so, "zo": zo},
               TensorProto.INT8)  # fmt: skip
    ours = fast_ort.qgap_codes(torch.from_numpy(x.astype(np.float32)), float(si), zero,
                               float(so), 1)  # fmt: skip
    assert np.array_equal(ours.numpy(), ref.astype(np.float32))


def test_float_mean_equals_global_average_pool() -> None:
    rng = np.random.default_rng(5)
    x = (rng.integers(0, 256, (1, 1280, 8, 8)) * np.float32(0.0235294)).astype(np.float32)
    ref = _run([helper.make_node("GlobalAveragePool", ["x"], ["y"])], {"x": x}, {},
               TensorProto.FLOAT)  # fmt: skip
    ours = fast_ort.float_mean(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours, ref)
    assert not np.array_equal(torch.from_numpy(x).double().mean((2, 3), True).float(), ref)


def test_fused_convs_are_those_onnxruntime_fuses(tmp_path) -> None:
    """The convs emulated as QLinearConv are exactly those in onnxruntime's optimised graph."""
    stylizer = FastStylizer("fp32")
    for name in ("predict", "transform"):
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(tmp_path / f"{name}.onnx")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ort.InferenceSession(str(model_file(name)), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(tmp_path / f"{name}.onnx")).graph
        theirs = {n.input[3].rsplit("/", 1)[0] for n in graph.node if n.op_type == "QLinearConv"}
        net, _ = stylizer.net(name)
        fast_ort.set_mode(net, "ort", model_file(name))
        sims = [m for m in net.modules() if hasattr(m, "fused")]
        assert sims and all(m.fused == theirs for m in sims), name
        assert len(theirs) == (36 if name == "predict" else 1)


def test_quant_option_is_checked() -> None:
    with pytest.raises(CnnkitError, match="unknown quant"):
        FastStylizer("fp32", quant="int4")
    with pytest.raises(CnnkitError, match="fp32"):
        FastStylizer("bf16", quant="ort")
    assert FastStylizer("auto", quant="ort").precision == "fp32"


def test_emulated_style_vectors_equal_onnxruntime() -> None:
    """The predictor on every shipped sample (grayscale and textures too): the same int8 style
    vector as onnxruntime's default session, entry for entry."""
    from cnnkit.io import sample_path
    from cnnkit.io.samples import SAMPLE_NAMES
    from cnnkit.style.fast_check import _nchw, native_inputs, session

    pred, _ = FastStylizer("fp32", quant="ort").net("predict")
    ref_sess = session(model_file("predict"))
    for name in SAMPLE_NAMES:
        _, style = native_inputs(sample_path(name), sample_path(name))
        ref = ref_sess.run(None, {ref_sess.get_inputs()[0].name: style[None]})[0].reshape(1, -1)
        with torch.no_grad():
            ours = pred(_nchw(style)).numpy()
        assert np.array_equal(ours, ref), name
