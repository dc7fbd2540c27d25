"""dlib's CNN face detector (MMOD, ``mmod_human_face_detector.dat``) read without dlib, in PyTorch.

The network (dlib tools/python/src/cnn_face_detector.cpp), input first:

- input: the tiled image pyramid of :mod:`cnnkit.face.pyramid`, built in tensor space as dlib
  does: (pixel - mean) / 256 in level 0, each further level a float bilinear resize (corners
  aligned) of the one before, 0 between and around the levels;
- downsampler: three 5x5 stride-2 unpadded convs (16, 32, 32 filters), each + affine + ReLU;
- three 5x5 "same" convs of 45 filters + affine + ReLU;
- a 9x9 "same" conv to one channel: the score s of an 80x80 detector window centred on each cell.

The file stores the affine layers as batch norms (``bn_con2``); dlib freezes them on reading:
gamma' = gamma / sqrt(running_var + eps), beta' = beta - gamma' * running_mean. Here each is folded
into its conv: W' = W gamma', b' = b gamma' + beta'.

From scores to boxes (dlib/dnn/loss.h ``loss_mmod_::to_label``): every cell (r, c) with s > 0 maps
back through the convs to the input tensor point (8c + 14, 8r + 14) (each stride-2 5x5 conv maps
p -> 2p + 2); an 80x80 window centred there, (x - 39.5, y - 39.5, x + 39.5, y + 39.5), maps
to the image through the level it falls in (:func:`cnnkit.face.pyramid.tiled_to_image`); boxes are
sorted by score and kept greedily unless they overlap a kept one (IoU > 0.338, from the file).
``upsample`` doubles the image first with dlib's ``pyramid_up`` and maps boxes back with
``pyramid_down<2>::rect_down``, as dlib's Python binding does.

Example:
    >>> det = MmodDetector.load()                       # the .dat from face_recognition_models
    >>> det.detect(image, upsample=1)                   # image: (H, W, 3) uint8 RGB
    [MmodBox(rect=(left, top, right, bottom), confidence=1.04)]
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import WeightsError
from cnnkit.face.dlib_format import DlibFormatError, LayerRecord, Reader, _read_layer
from cnnkit.face.pyramid import (
    Rect,
    TiledLayout,
    pyramid_up2,
    rect_down2,
    round_rect,
    tiled_layout,
    tiled_to_image,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MmodOptions:
    """The parts of dlib's ``mmod_options`` that detection uses."""

    window: tuple[int, int]  # detector window (width, height) in pixels
    nms_iou: float  # overlaps_nms: a box overlapping a kept one by more IoU than this is dropped
    nms_covered: float  # ... or covering more than this fraction of either box


@dataclass
class MmodNet:
    """A parsed MMOD file: options, input means (R, G, B) and the convs with affines folded in."""

    options: MmodOptions
    mean: tuple[float, float, float]
    convs: list[tuple[np.ndarray, np.ndarray, int, int]]  # (W (out, in, kh, kw), b, stride, pad)


def _fold(conv: LayerRecord, bn: LayerRecord) -> tuple[np.ndarray, np.ndarray, int, int]:
    f = conv.fields
    assert conv.params is not None and bn.params is not None
    shape = tuple(f["filters"])
    flat = conv.params.reshape(-1).astype(np.float64)
    n_w = int(np.prod(shape))
    weight, bias = flat[:n_w].reshape(shape), flat[n_w:]
    gamma, beta = np.split(bn.params.reshape(-1).astype(np.float64), 2)
    var = bn.fields["running_variances"].reshape(-1).astype(np.float64)
    mean = bn.fields["running_means"].reshape(-1).astype(np.float64)
    g = (gamma / np.sqrt(var + bn.fields["eps"])).astype(np.float32).astype(np.float64)
    b = beta - g * mean
    w = weight * g[:, None, None, None]
    return (w.astype(np.float32), (bias * g + b).astype(np.float32), f["stride_y"], f["pad_y"])


def parse_mmod(data: bytes, *, name: str = "<bytes>") -> MmodNet:
    """Parse the bytes of dlib's ``mmod_human_face_detector.dat`` (see the module docstring)."""
    r = Reader(data, name=name)
    if r.integer() != 1 or r.string() != "loss_mmod_":
        raise DlibFormatError("not an MMOD detector (no loss_mmod_)", path=name)
    version = r.integer()
    if version == 1:
        window = (r.integer(), r.integer())
    else:
        raise DlibFormatError(f"unsupported mmod_options version {version}", path=name)
    r.floating(), r.floating(), r.floating()  # loss per false alarm / missed target, match IoU
    nms_iou, nms_covered = r.floating(), r.floating()
    r.floating(), r.floating()  # overlaps_ignore
    versions: list[int] = []
    while r.peek_int() in (1, 2, 3):
        versions.append(r.integer())
    input_name = r.string()
    if input_name != "input_rgb_image_pyramid":
        raise DlibFormatError(f"unsupported input layer {input_name!r}", path=name)
    mean = (r.floating(), r.floating(), r.floating())
    layers: list[LayerRecord] = []
    for v in versions[::-1]:
        layers.append(_read_layer(r))
        for _ in range(3):
            r.boolean()
        for _ in range(3):
            r.tensor()
        if v == 3:
            r.integer()
    if r.remaining():
        raise DlibFormatError(f"{r.remaining()} unexpected bytes after the last layer", path=name)
    convs: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    i = 0
    while i < len(layers):
        rec = layers[i]
        if rec.name != "con_4":
            raise DlibFormatError(f"unexpected layer {rec.name!r} at {i}", path=name)
        if i + 1 < len(layers) and layers[i + 1].name == "bn_con2":
            convs.append(_fold(rec, layers[i + 1]))
            if layers[i + 2].name != "relu_":
                raise DlibFormatError("expected relu_ after bn_con2", path=name)
            i += 3
        else:
            assert rec.params is not None
            shape = tuple(rec.fields["filters"])
            flat = rec.params.reshape(-1)
            n_w = int(np.prod(shape))
            convs.append(
                (flat[:n_w].reshape(shape), flat[n_w:], rec.fields["stride_y"], rec.fields["pad_y"])
            )
            i += 1
    return MmodNet(MmodOptions(window, nms_iou, nms_covered), mean, convs)


def read_mmod(path: str | Path | None = None) -> MmodNet:
    """Read ``mmod_human_face_detector.dat`` (None: the one face_recognition_models ships)."""
    from cnnkit.face.models_files import model_file

    path = Path(path) if path is not None else model_file("mmod_detector")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read the model file ({exc.strerror})", path=path) from exc
    return parse_mmod(data, name=str(path))


class MmodNetwork(nn.Module):
    """The detector's conv stack: (N, 3, H, W) tiled input -> (N, 1, H', W') scores.

    The input is the tensor :meth:`tiled_input` builds; three unpadded stride-2 5x5 convs
    make H' = ((((H - 5) // 2 + 1) - 5) // 2 + 1 - 5) // 2 + 1, the "same" convs keep it.
    """

    mean: torch.Tensor

    def __init__(self, net: MmodNet):
        super().__init__()
        self.register_buffer("mean", torch.tensor(net.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.convs = nn.ModuleList()
        self.geometry: list[tuple[int, int, int]] = []  # (kernel, stride, pad) per conv
        for w, b, stride, pad in net.convs:
            conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=pad)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                assert conv.bias is not None
                conv.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            self.convs.append(conv)
            self.geometry.append((w.shape[2], stride, pad))

    def tiled_input(self, images: torch.Tensor, layout: TiledLayout) -> torch.Tensor:
        """dlib's input tensor: (N, 3, H, W) pixels in [0, 255] -> (N, 3, H_t, W_t) float32.

        Level 0 is (pixel - mean) / 256; level i is level i - 1 resized bilinearly with corners
        aligned to the size of ``layout.rects[i]``; everything else is 0.
        """
        n = images.shape[0]
        x = images.new_zeros((n, 3, layout.height, layout.width), dtype=torch.float32)
        prev = (images.float() - self.mean) / 256.0
        for i, (left, top, right, bottom) in enumerate(layout.rects):
            if i:
                size = (bottom - top + 1, right - left + 1)
                prev = F.interpolate(prev, size=size, mode="bilinear", align_corners=True)
            x[:, :, top : bottom + 1, left : right + 1] = prev
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i != last:
                x = F.relu(x, inplace=True)
        return x

    def cell_to_input(self, c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dlib's ``output_tensor_to_input_tensor``: p -> p * stride - pad + kernel // 2, last
        conv first."""
        x, y = c.astype(np.float64), r.astype(np.float64)
        for k, s, p in reversed(self.geometry):
            x, y = x * s - p + k // 2, y * s - p + k // 2
        return x, y


@dataclass(frozen=True)
class MmodBox:
    """One detection: dlib's rectangle (left, top, right, bottom), inclusive, and its score."""

    rect: Rect
    confidence: float


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    """dlib's ``test_box_overlap`` on integer rectangles (area counts pixels, sides inclusive)."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return False
    inner = float(iw * ih)
    area_a = float((a[2] - a[0] + 1) * (a[3] - a[1] + 1))
    area_b = float((b[2] - b[0] + 1) * (b[3] - b[1] + 1))
    outer = area_a + area_b - inner
    return inner / outer > iou or inner / area_a > covered or inner / area_b > covered


class MmodDetector:
    """dlib's CNN face detector in PyTorch: batched over images and pyramid levels, GPU-able.

    Attributes:
        net: the parsed file (options, means, folded convs).
        model: the :class:`MmodNetwork` on ``device``.
    """

    def __init__(self, net: MmodNet, device: str | torch.device = "cpu"):
        self.net = net
        self.device = torch.device(device)
        self.model = MmodNetwork(net).eval().to(self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @classmethod
    def load(
        cls, path: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> MmodDetector:
        return cls(read_mmod(path), device=device)

    @staticmethod
    def _upsampled(image: np.ndarray, upsample: int) -> np.ndarray:
        for _ in range(upsample):
            image = pyramid_up2(image)
        return image

    def scores(self, images: np.ndarray) -> tuple[np.ndarray, TiledLayout]:
        """Score maps: (N, H, W, 3) uint8 -> (N, H', W') float32 over the tiled pyramid, and
        the pyramid's layout."""
        layout = tiled_layout(images.shape[1], images.shape[2])
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
            x = self.model.tiled_input(x.permute(0, 3, 1, 2), layout)
            y = self.model(x.contiguous(memory_format=torch.channels_last))[:, 0]
        return y.float().cpu().numpy(), layout

    def _boxes(
        self, score: np.ndarray, layout: TiledLayout, upsample: int, threshold: float
    ) -> list[MmodBox]:
        rows, cols = np.nonzero(score > threshold)
        if len(rows) == 0:
            return []
        vals = score[rows, cols].astype(np.float64)
        xs, ys = self.model.cell_to_input(cols, rows)
        ww, wh = self.net.options.window
        hw, hh = (ww - 1) / 2, (wh - 1) / 2  # dlib's centered_drect(p, w, h)
        order = np.argsort(-vals, kind="stable")
        kept: list[MmodBox] = []
        opt = self.net.options
        for i in order:
            d = tiled_to_image(layout, (xs[i] - hw, ys[i] - hh, xs[i] + hw, ys[i] + hh))
            rect = round_rect(d)
            if any(_overlaps(k.rect, rect, opt.nms_iou, opt.nms_covered) for k in kept):
                continue
            kept.append(MmodBox(rect, float(vals[i])))
        if upsample:
            kept = [MmodBox(rect_down2(k.rect, upsample), k.confidence) for k in kept]
        return kept

    def detect(self, image: np.ndarray, upsample: int = 0, threshold: float = 0.0) -> list[MmodBox]:
        """Faces in one (H, W, 3) uint8 RGB image, most confident first (dlib's order)."""
        return self.detect_batch([image], upsample, threshold)[0]

    def detect_batch(
        self, images: list[np.ndarray], upsample: int = 0, threshold: float = 0.0
    ) -> list[list[MmodBox]]:
        """:meth:`detect` for several images; images of the same size run in one forward pass."""
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        out: list[list[MmodBox]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(tuple(im.shape), []).append(i)
        for idx in groups.values():
            batch = np.stack([self._upsampled(images[i], upsample) for i in idx])
            if batch.shape[1] * batch.shape[2] == 0:
                continue
            score, layout = self.scores(batch)
            for j, i in enumerate(idx):
                out[i] = self._boxes(score[j], layout, upsample, threshold)
        return out


_default: MmodDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> MmodDetector:
    """The shipped MMOD detector on the CPU (or CUDA when available), loaded once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MmodDetector.load(device="cuda" if torch.cuda.is_available() else "cpu")
        return _default
