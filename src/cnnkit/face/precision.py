"""The face encoder's arithmetic: fp32, bf16 or int8, chosen by what the CPU (or GPU) offers.

The face ResNet costs a fixed ~0.38 GMAC per 150x150 chip, so past a good fp32 kernel the next
factor is precision:

- ``bf16``: the folded network run under ``torch.autocast`` in bfloat16, on CPUs with native bf16
  (AVX512-BF16 or AMX-BF16: oneDNN then uses the bf16 dot-product units) and on GPUs with it.
  Descriptors move by ~1e-2 (dlib's same-person threshold is 0.6).
- ``int8``: static quantisation (torch.ao FX graph mode, the ``x86`` backend: fbgemm/oneDNN with
  VNNI), weights per channel, activations per tensor, calibrated on face chips made from the
  photos installed packages ship (:func:`calibration_chips`). dlib's ``add_prev`` of
  different-shaped tensors becomes static zero pads (:class:`StaticFaceResNet`) so the graph traces.
- ``fp32`` otherwise (and the reference: within 1e-4 of dlib).

``auto`` picks bf16 where :func:`cnnkit.cpu.bf16_native` says so (the CPU reports avx512_bf16 or
amx_bf16 and torch runs its bf16 kernels natively; CUDA with compute capability 8.0+), int8 on
other x86 CPUs with AVX2, fp32 elsewhere; :func:`resolve_precision` returns the choice and logs
why.
"""

from __future__ import annotations

import copy
import logging
import platform
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.cpu import bf16_native, cpu_flags

log = logging.getLogger(__name__)

#: The precisions a user can ask for.
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def cpu_has_int8() -> bool:
    """True on x86 CPUs where torch's ``x86`` quantised engine runs (AVX2 at least)."""
    machine = platform.machine().lower()
    x86 = machine in ("x86_64", "amd64", "i686")
    capable = "avx2" in cpu_flags() or torch.backends.cpu.get_cpu_capability() != "DEFAULT"
    return x86 and capable and "x86" in torch.backends.quantized.supported_engines


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"fp32"``, ``"bf16"`` or ``"int8"`` for a request of ``precision`` on ``device``.

    Raises:
        ValueError: an unknown precision, or int8 asked for off the CPU or where the CPU lacks it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    kind = torch.device(device).type
    if precision == "int8" and (kind != "cpu" or not cpu_has_int8()):
        raise ValueError("precision int8 needs an x86 CPU with AVX2 (torch's x86 engine)")
    if precision != "auto":
        return precision
    if kind == "cuda":
        native = bf16_native(device)  # compute capability 8.0+: emulated bf16 is slower
        chosen = "bf16" if native else "fp32"
        why = "a CUDA device" if native else "a CUDA device without native bf16"
    elif kind != "cpu":
        chosen, why = "fp32", f"a {kind} device"
    elif bf16_native(device):
        chosen, why = "bf16", "the CPU has native bf16 (avx512_bf16/amx_bf16)"
    elif cpu_has_int8():
        chosen, why = "int8", "an x86 CPU without native bf16"
    else:
        chosen, why = "fp32", "no native bf16 or x86 int8 on this CPU"
    log.info("face encoder precision auto: %s (%s)", chosen, why)
    return chosen


class StaticFaceResNet(nn.Module):
    """The folded face ResNet with every ``add_prev`` as static pads, for FX tracing and int8.

    Same function as :class:`cnnkit.face.encoder.DlibFaceResNet` after ``fold_affine``:
    (N, 3, 150, 150) pixels in [0, 255] -> (N, 128). Each residual unit computes
    ReLU(pad(y) + pad(shortcut)) with the pads fixed from the shapes a 150x150 chip gives.
    """

    def __init__(self, folded: nn.Module):
        super().__init__()
        if not getattr(folded, "input_folded", False):
            raise ValueError("StaticFaceResNet wants the output of encoder.fold_affine")
        self.stem: nn.Module = copy.deepcopy(folded.stem)  # type: ignore[assignment]
        self.blocks = nn.ModuleList()
        self.pads: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        x = torch.zeros(1, 32, 35, 35)  # after the stem's conv and max pool
        for block in folded.blocks:  # type: ignore[union-attr]
            b: Any = copy.deepcopy(block)
            y = b.conv2(F.relu(b.conv1(x)))
            s = x if b.pool is None else b.pool(x)
            c, h, w = (max(y.shape[i], s.shape[i]) for i in (1, 2, 3))

            def pad(t: torch.Tensor, c: int = c, h: int = h, w: int = w) -> tuple[int, ...]:
                return (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1])

            self.blocks.append(b)
            self.pads.append((pad(y), pad(s)))
            x = torch.zeros(1, c, h, w)
        self.fc: nn.Module = copy.deepcopy(folded.fc)  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)  # (N, 32, 35, 35)
        block: Any
        for block, (pad_y, pad_s) in zip(self.blocks, self.pads, strict=True):
            y = block.conv2(F.relu(block.conv1(x)))
            s = x if block.pool is None else block.pool(x)
            if any(pad_y):
                y = F.pad(y, pad_y)
            if any(pad_s):
                s = F.pad(s, pad_s)
            x = F.relu(y + s)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))  # (N, 128)


@lru_cache(maxsize=1)
def calibration_chips() -> np.ndarray:
    """Aligned 150x150 chips for int8 calibration: the faces in the photos scikit-image and
    matplotlib ship, and flipped, brighter, darker, lower-contrast, rotated and cropped copies.
    (N, 150, 150, 3) uint8."""
    from PIL import Image, ImageEnhance

    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import detect
    from cnnkit.io import load_image_pil, sample_path

    chips: list[np.ndarray] = []
    for name in ("grace_hopper", "astronaut"):
        pil = load_image_pil(sample_path(name))
        w, h = pil.size
        variants = [
            pil,
            pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            ImageEnhance.Brightness(pil).enhance(1.35),
            ImageEnhance.Brightness(pil).enhance(0.6),
            ImageEnhance.Contrast(pil).enhance(0.6),
            ImageEnhance.Color(pil).enhance(0.0),
            pil.rotate(8, resample=Image.Resampling.BILINEAR),
            pil.rotate(-8, resample=Image.Resampling.BILINEAR),
            pil.resize((w // 3, h // 3), Image.Resampling.BILINEAR),
        ]
        for v in variants:
            img = np.asarray(v.convert("RGB"))
            chips.extend(align_faces(img, detect(img, 0)[:1])[1])  # large faces: no upsampling
    return np.stack(chips)


def quantize_int8(folded: nn.Module, chips: np.ndarray | None = None) -> nn.Module:
    """An int8 copy of the folded face ResNet (FX static quantisation, ``x86`` engine).

    Args:
        folded: the output of :func:`cnnkit.face.encoder.fold_affine` (fp32, CPU).
        chips: (N, 150, 150, 3) uint8 calibration chips; None: :func:`calibration_chips`.

    Returns:
        A module taking (N, 3, 150, 150) float pixels in [0, 255] -> (N, 128) float.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    model = StaticFaceResNet(copy.deepcopy(folded).float().cpu()).eval()
    chips = calibration_chips() if chips is None else chips
    x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
    with warnings.catch_warnings():  # torch.ao.quantization warns it will move to torchao
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), example_inputs=(x[:1],))
        with torch.inference_mode():
            for i in range(0, len(x), 8):
                prepared(x[i : i + 8])
        return convert_fx(prepared).eval()
