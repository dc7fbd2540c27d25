"""Images and colour for style transfer: PIL in, NCHW tensors, YIQ luminance, devices.

Shared by the optimisation (:mod:`cnnkit.style.transfer`) and the fast path (:mod:`fast`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.errors import ShapeError
from cnnkit.style.config import ImageInput

log = logging.getLogger(__name__)


def _to_pil(image: ImageInput, what: str) -> Image.Image:
    from cnnkit.io import load_image_pil, to_uint8

    if isinstance(image, (str, Path)):
        return load_image_pil(image)  # converts grayscale / RGBA / palette to RGB
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ShapeError(f"{what} must be an (H, W, 3) image, got shape {array.shape}")
    return Image.fromarray(to_uint8(array[:, :, :3]))


def _resize_longest(img: Image.Image, longest: int, what: str = "") -> Image.Image:
    """Resize so that the longest side is ``longest``; note a large reduction of ``what``."""
    w, h = img.size
    scale = longest / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == img.size:
        return img
    if scale < 0.5 and what:
        log.info("note: %s is %dx%d; resized to %dx%d (--size)", what, w, h, *size)
    return img.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def _pil_to_tensor(img: Image.Image, device: torch.device) -> torch.Tensor:
    """PIL RGB -> (1, 3, H, W) float32 in [0, 1], contiguous NCHW."""
    array = np.asarray(img, dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)[None])).to(device)


# YIQ (NTSC): Y is the luminance; I, Q carry the colour.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB -> YIQ."""
    return torch.einsum("ij,njhw->nihw", _RGB2YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` YIQ -> RGB."""
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB2YIQ).to(x), x)


def _luminance_only(x: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """Gray ``x`` (its Y repeated 3 times); with ``like``, Y matched to like's mean and std."""
    y = rgb_to_yiq(x)[:, :1]
    if like is not None:
        y_like = rgb_to_yiq(like)[:, :1]
        y = (y - y.mean()) / y.std().clamp_min(1e-6) * y_like.std() + y_like.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def _recolor(G: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep G's luminance Y and take the colour (I, Q) from the content image."""
    yiq_G = rgb_to_yiq(G.clamp(0, 1).mean(dim=1, keepdim=True).expand(-1, 3, -1, -1))
    yiq_C = rgb_to_yiq(content)
    return yiq_to_rgb(torch.cat([yiq_G[:, :1], yiq_C[:, 1:]], dim=1)).clamp(0, 1)


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
