"""The face encoder f: dlib's face ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

Architecture (dlib examples/dnn_face_recognition_ex.cpp), input a 150x150 RGB chip:

- stem: conv 7x7/2, 32 filters, no padding (150 -> 72); affine; ReLU; max pool 3x3/2 (-> 35);
- stages: 3 x block(32); down(64) + 3 x block(64); down(128) + 2 x block(128);
  down(256) + 2 x block(256); down(256);
- global average pool, then a 256 -> 128 linear map without bias: f(x) in R^128.

``block(C)``: a[l+2] = ReLU(affine(conv3x3(ReLU(affine(conv3x3(a[l]))))) + a[l]).
``down(C)``: the first conv has stride 2 and no padding; the shortcut is a 2x2/2 average pool of
a[l]. dlib's ``add_prev`` adds tensors of different shapes: the sum takes the larger n_C, n_H, n_W,
missing values counting as zero (at 8x8 the conv path is 3x3 and the pooled path 4x4).

dlib's ``affine`` layer is a per-channel scale and shift (a frozen batch norm). Here every conv has
no bias and is followed by an :class:`Affine` holding scale = gamma and shift = gamma * b + beta;
:func:`fold_affine` merges each pair into one biased conv for inference.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ShapeError, WeightsError, first_line
from cnnkit.face.dlib_format import DlibNet, read_dlib_net
from cnnkit.models.resnet import conv3x3

log = logging.getLogger(__name__)

ARCH = "dlib_resnet_v1"
#: Chip side the encoder takes, in pixels.
CHIP_SIZE = 150
#: RGB means subtracted before dividing by 256 (dlib's input_rgb_image_sized).
DLIB_MEAN = (122.782, 117.001, 104.298)
#: (channels, is_down) per residual unit, in forward order.
STAGES: list[tuple[int, bool]] = (
    [(32, False)] * 3
    + [(64, True)] + [(64, False)] * 3
    + [(128, True)] + [(128, False)] * 2
    + [(256, True)] + [(256, False)] * 2
    + [(256, True)]
)  # fmt: skip


def add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: a + b over the larger shape, top-left aligned, missing values = 0.

    a, b: (N, C, H, W) with possibly different C, H, W -> (N, max C, max H, max W).
    """
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class Affine(nn.Module):
    """Per-channel scale and shift: a[c] * scale[c] + shift[c] on (N, C, H, W)."""

    def __init__(self, n_C: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_C))
        self.shift = nn.Parameter(torch.zeros(n_C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


class ConvAffine(nn.Module):
    """A bias-free conv followed by an :class:`Affine`; :meth:`folded` merges them."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.affine = Affine(conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(self.conv(x))

    def folded(self) -> nn.Conv2d:
        """One conv with W' = W * scale (per output channel) and bias = shift."""
        c = self.conv
        out = nn.Conv2d(
            c.in_channels,
            c.out_channels,
            c.kernel_size,  # type: ignore[arg-type]
            c.stride,  # type: ignore[arg-type]
            c.padding,  # type: ignore[arg-type]
            bias=True,
        )
        with torch.no_grad():
            out.weight.copy_(c.weight * self.affine.scale.view(-1, 1, 1, 1))
            assert out.bias is not None
            out.bias.copy_(self.affine.shift)
        return out.to(c.weight.device)


def _down_conv3x3(in_C: int, out_C: int) -> nn.Conv2d:
    # dlib pads a 3x3 conv by 1 only when its stride is 1: the stride-2 conv of a down block
    # has no padding (35 -> 17, 17 -> 8, 8 -> 3), which the shared conv3x3 (always "same"
    # padding) cannot express, so this one conv is built directly.
    return nn.Conv2d(in_C, out_C, 3, stride=2, padding=0, bias=False)


class FaceBlock(nn.Module):
    """A residual unit, ``block(C)`` or ``down(C)``: (N, C_in, H, W) -> (N, C, H', W')."""

    def __init__(self, in_C: int, out_C: int, down: bool):
        super().__init__()
        first = _down_conv3x3(in_C, out_C) if down else conv3x3(in_C, out_C)
        self.conv1: nn.Module = ConvAffine(first)
        self.conv2: nn.Module = ConvAffine(conv3x3(out_C, out_C))
        self.pool = nn.AvgPool2d(2, 2) if down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        shortcut = x if self.pool is None else self.pool(x)
        return F.relu(add_prev(y, shortcut), inplace=True)


class DlibFaceResNet(nn.Module):
    """dlib's face ResNet: (N, 3, 150, 150) RGB pixel values in [0, 255] -> (N, 128).

    The input is normalised inside, as dlib does: (pixel - mean[c]) / 256.
    """

    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(DLIB_MEAN, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.stem: nn.Module = ConvAffine(nn.Conv2d(3, 32, 7, stride=2, padding=0, bias=False))
        blocks = []
        in_C = 32
        for out_C, down in STAGES:
            blocks.append(FaceBlock(in_C, out_C, down))
            in_C = out_C
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_C, 128, bias=False)
        #: True once :func:`fold_affine` has moved the input normalisation into the stem conv.
        self.input_folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.input_folded:
            x = (x - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x), inplace=True), 3, 2)  # (N, 32, 35, 35)
        x = self.blocks(x)  # (N, 256, 2, 2)
        return self.fc(x.mean(dim=(2, 3)))  # (N, 128)


def fold_affine(model: DlibFaceResNet) -> DlibFaceResNet:
    """An inference copy of ``model``: every :class:`ConvAffine` becomes one biased conv, and
    the input normalisation (x - mean) / 256 moves into the stem conv (it has no padding, so
    W' = W / 256 and b' = b - sum W' mean is exact)."""
    model = copy.deepcopy(model)

    def visit(m: nn.Module) -> None:
        for name, child in m.named_children():
            if isinstance(child, ConvAffine):
                setattr(m, name, child.folded())
            else:
                visit(child)

    visit(model)
    stem = model.stem
    assert isinstance(stem, nn.Conv2d) and stem.bias is not None and stem.padding == (0, 0)
    with torch.no_grad():
        stem.weight.div_(256.0)
        stem.bias.sub_((stem.weight * model.mean.view(1, 3, 1, 1)).sum(dim=(1, 2, 3)))
    model.input_folded = True
    return model


def _conv_affine_units(model: DlibFaceResNet) -> list[ConvAffine]:
    return [m for m in model.modules() if isinstance(m, ConvAffine)]


def state_dict_from_dlib(net: DlibNet) -> dict[str, torch.Tensor]:
    """Map a parsed dlib face ResNet onto :class:`DlibFaceResNet`'s state_dict.

    dlib's con_4 params hold W (out, in, kh, kw) then b; affine_ params hold gamma then beta;
    here shift = gamma * b + beta so that affine(conv(x) + b) = conv(x) * gamma + shift.

    Raises:
        WeightsError: the records do not match the architecture (another network).
    """
    model = DlibFaceResNet()
    units = _conv_affine_units(model)
    convs = [r for r in net.layers if r.name == "con_4"]
    affines = [r for r in net.layers if r.name == "affine_"]
    fcs = [r for r in net.layers if r.name == "fc_2"]
    if len(convs) != len(units) or len(affines) != len(units) or len(fcs) != 1:
        raise WeightsError(
            f"the network has {len(convs)} convs, {len(affines)} affines and {len(fcs)} fc layers;"
            f" {ARCH} has {len(units)}, {len(units)} and 1",
            hint="only dlib_face_recognition_resnet_model_v1.dat is supported",
        )
    state: dict[str, torch.Tensor] = {}
    names = {id(m): n for n, m in model.named_modules()}
    for unit, cr, ar in zip(units, convs, affines, strict=True):
        conv = unit.conv
        shape = tuple(conv.weight.shape)
        f = cr.fields
        geometry = (f["stride_y"], f["stride_x"], f["pad_y"], f["pad_x"])
        expected = (conv.stride[0], conv.stride[1], conv.padding[0], conv.padding[1])  # type: ignore[index]
        if f["filters"] != shape or geometry != expected:
            raise WeightsError(
                f"conv {f['filters']} stride/pad {geometry} does not fit {shape} {expected}",
                hint="only dlib_face_recognition_resnet_model_v1.dat is supported",
            )
        assert cr.params is not None and ar.params is not None
        flat = cr.params.reshape(-1)
        n_w = int(np.prod(shape))
        weight, bias = flat[:n_w].reshape(shape), flat[n_w:]
        gamma, beta = np.split(ar.params.reshape(-1), 2)
        prefix = names[id(unit)]
        state[f"{prefix}.conv.weight"] = torch.from_numpy(weight.copy())
        state[f"{prefix}.affine.scale"] = torch.from_numpy(gamma.copy())
        state[f"{prefix}.affine.shift"] = torch.from_numpy((gamma * bias + beta).astype(np.float32))
    fc = fcs[0]
    assert fc.params is not None
    w = fc.params.reshape(fc.fields["num_inputs"], fc.fields["num_outputs"])  # x @ W
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(w.T))  # (128, 256)
    model.load_state_dict(state)  # checks that every key and shape is there
    return state


def load_dlib_dat(path: str | Path) -> DlibFaceResNet:
    """Build :class:`DlibFaceResNet` with the weights parsed from dlib's ``.dat`` file."""
    model = DlibFaceResNet()
    model.load_state_dict(state_dict_from_dlib(read_dlib_net(path)))
    return model.eval()


def load_checkpoint(path: str | Path) -> tuple[DlibFaceResNet, str | None]:
    """Load a fine-tuned encoder saved with ``torch.save({"state_dict", "model_id", "arch"})``.

    Returns the model and the checkpoint's ``model_id`` (None when absent).

    Raises:
        WeightsError: unreadable file, another architecture, or weights that do not fit.
    """
    path = Path(path)
    try:
        ckpt: Any = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise WeightsError("no such model file", path=path, hint="check --model") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise WeightsError(
            f"not a readable torch checkpoint ({type(exc).__name__})",
            path=path,
            hint="give a file saved by `cnnkit face train`, or dlib's .dat",
        ) from exc
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        arch = ckpt.get("arch", ARCH)
        if arch != ARCH:
            raise WeightsError(f"checkpoint architecture {arch!r} is not {ARCH!r}", path=path)
        state, model_id = ckpt["state_dict"], ckpt.get("model_id")
    elif isinstance(ckpt, dict):
        state, model_id = ckpt, None
    else:
        raise WeightsError("the checkpoint holds no state_dict", path=path)
    model = DlibFaceResNet()
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise WeightsError(f"the weights do not fit {ARCH} ({first_line(exc)})", path=path) from exc
    return model.eval(), (str(model_id) if model_id else None)


def check_chips(chips: np.ndarray) -> np.ndarray:
    """Validate (N, 150, 150, 3) or (150, 150, 3) uint8 chips; returns (N, 150, 150, 3)."""
    chips = np.asarray(chips)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise ShapeError(
            f"expected face chips of shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}",
            hint="use cnnkit.face.align(image, landmarks) to make chips",
        )
    if chips.dtype != np.uint8:
        raise ShapeError(f"expected uint8 chips, got {chips.dtype}", hint="use align()")
    return chips


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnkit")) / "face"


def dlib_model_id(dat_path: str | Path | None = None) -> str:
    """The ``model_id`` of dlib's encoder (``dat_path`` None: the shipped ``.dat``) without
    loading it, as :func:`converted_dlib_model` names it."""
    from cnnkit.face.models_files import model_file
    from cnnkit.io import file_sha256

    dat = Path(dat_path) if dat_path is not None else model_file("resnet_v1")
    if not dat.is_file():
        raise WeightsError("no such model file", path=dat, hint="check --model")
    return _dlib_id(file_sha256(dat))


def _dlib_id(digest: str) -> str:
    return f"{ARCH}:{digest[:12]}"


def converted_dlib_model(dat_path: str | Path | None = None) -> tuple[DlibFaceResNet, str]:
    """dlib's face ResNet as a PyTorch model, converted once and cached as safetensors.

    The cache file is ``<user cache dir>/cnnkit/face/<sha256 of the .dat, 16 hex>.safetensors``,
    written atomically. Returns the model (eval mode, unfolded) and its model_id
    ``"dlib_resnet_v1:<sha256[:12]>"``.
    """
    from safetensors.torch import load_file, save

    from cnnkit.face.models_files import model_file
    from cnnkit.io import atomic_write_bytes, file_sha256

    dat = Path(dat_path) if dat_path is not None else model_file("resnet_v1")
    if not dat.is_file():
        raise WeightsError("no such model file", path=dat, hint="check --model")
    digest = file_sha256(dat)
    model_id = _dlib_id(digest)
    cache = _cache_dir() / f"{digest[:16]}.safetensors"
    model = DlibFaceResNet()
    if cache.is_file():
        try:
            model.load_state_dict(load_file(str(cache)))
            return model.eval(), model_id
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt, not fatal
            log.warning("rebuilding the damaged converted-model cache %s (%s)", cache, exc)
    log.info("converting %s to %s", dat, cache)
    state = state_dict_from_dlib(read_dlib_net(dat))
    model.load_state_dict(state)
    try:
        atomic_write_bytes(cache, save({k: v.contiguous() for k, v in state.items()}))
    except OSError as exc:  # a read-only cache dir only costs the conversion next time
        log.warning("could not cache the converted model at %s (%s)", cache, exc)
    return model.eval(), model_id


class FaceEncoder:
    """The encoder f: aligned 150x150 RGB chips -> 128-d descriptors, batched.

    Two descriptors of the same person lie within about 0.6 (Euclidean) of each other.

    Example:
        >>> enc = FaceEncoder.load()                      # dlib's weights, converted once
        >>> enc.embed(chips).shape                        # chips: (N, 150, 150, 3) uint8
        (N, 128)

    Attributes:
        model: the trainable :class:`DlibFaceResNet` (affine layers unfolded).
        model_id: short string naming the weights, stored with every embedding in a database.
        dim: descriptor length (128).
        device: torch device the folded inference copy runs on.
        precision: the arithmetic that ran (:mod:`cnnkit.face.precision`): ``"fp32"`` (default,
            matches dlib within 1e-4), ``"bf16"`` (the folded network in bfloat16: for CPUs
            with native bf16 and GPUs) or ``"int8"`` (static quantisation, x86 CPUs); asking
            for ``"auto"`` picks one by what the device reports.
        requested_precision: what was asked for (``"auto"`` or one of the above).
    """

    dim = 128

    def __init__(
        self,
        model: DlibFaceResNet,
        model_id: str,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch_size: int = 16,
    ):
        from cnnkit.face.precision import resolve_precision

        self.model = model.eval()
        self.model_id = model_id
        self.device = torch.device(device)
        self.requested_precision = precision
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        net = fold_affine(model).eval().to(self.device)
        for p in net.parameters():
            p.requires_grad_(False)
        if self.precision == "int8":
            from cnnkit.face.precision import quantize_int8

            self._net: nn.Module = quantize_int8(net)
        else:
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
            self._net = net.to(dtype=dtype, memory_format=torch.channels_last)  # type: ignore[call-overload]

    @classmethod
    def load(
        cls,
        model_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> FaceEncoder:
        """Load an encoder.

        Args:
            model_path: None for dlib's model (from ``face_recognition_models``, converted and
                cached); a ``.dat`` in dlib's format; a ``.safetensors`` state_dict; or a torch
                checkpoint ``{"state_dict", "model_id", "arch": "dlib_resnet_v1"}`` such as
                ``cnnkit face train`` writes.
            device: ``"cpu"``, ``"cuda"``, ...
            precision: ``"fp32"``, ``"bf16"``, ``"int8"`` or ``"auto"`` (see the class).
        """
        from cnnkit.io import file_sha256

        if model_path is None or str(model_path).endswith(".dat"):
            model, model_id = converted_dlib_model(model_path)
        elif str(model_path).endswith(".safetensors"):
            from safetensors.torch import load_file

            model = DlibFaceResNet()
            try:
                model.load_state_dict(load_file(str(model_path)))
            except Exception as exc:  # noqa: BLE001
                raise WeightsError(
                    f"not a {ARCH} safetensors file ({type(exc).__name__})", path=model_path
                ) from exc
            model_id = f"{ARCH}-custom:{file_sha256(model_path)[:12]}"
        else:
            model, ckpt_id = load_checkpoint(model_path)
            model_id = ckpt_id or f"{ARCH}-custom:{file_sha256(model_path)[:12]}"
        return cls(model, model_id, device=device, precision=precision)

    def embed(self, chips: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Descriptors of aligned chips: (N, 150, 150, 3) uint8 -> (N, 128) float32."""
        chips = check_chips(chips)
        bs = batch_size or self.batch_size
        out = np.empty((len(chips), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(chips), bs):
                x = torch.from_numpy(np.ascontiguousarray(chips[i : i + bs])).to(self.device)
                x = x.permute(0, 3, 1, 2).float()  # (N, 3, 150, 150), channels_last in memory
                if self.precision == "bf16":
                    x = x.to(torch.bfloat16)
                elif self.precision == "int8":
                    x = x.contiguous()  # fbgemm's quantised convs take NCHW input fastest
                out[i : i + len(x)] = self._net(x).float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"FaceEncoder({self.model_id!r}, device={str(self.device)!r}, {self.precision})"
