"""A procedurally painted style image: swirling brush strokes in a bold palette (NumPy only).

No famous painting ships with the installed packages, so the demo, the docs and the tests paint
their own "starry-night-like" canvas: a flow field made of a few vortices over a drifting wind,
colour noise smeared along that field (line-integral convolution, so it looks like short brush
strokes), and a palette of deep blues, cyan and yellow, with bright "stars" ringed by strokes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PALETTES", "swirl_painting"]

#: Palettes, dark to bright, RGB in [0, 1].
PALETTES: dict[str, np.ndarray] = {
    "starry": np.array(
        [
            [0.05, 0.09, 0.25],
            [0.10, 0.20, 0.50],
            [0.16, 0.36, 0.70],
            [0.38, 0.60, 0.80],
            [0.85, 0.85, 0.55],
            [0.98, 0.82, 0.20],
        ]
    ),
    "ember": np.array(
        [
            [0.15, 0.05, 0.10],
            [0.55, 0.10, 0.08],
            [0.85, 0.35, 0.10],
            [0.95, 0.65, 0.20],
            [0.20, 0.35, 0.45],
            [0.95, 0.90, 0.70],
        ]
    ),
}


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) value noise in [0, 1]: a (cells x cells) random grid, bicubic-like upsampled."""
    grid = rng.random((cells + 3, cells + 3))
    t = np.linspace(0, cells, size, endpoint=False) + 1
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)  # smoothstep
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]  # (size, cells + 3)
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _lic(texture: np.ndarray, vx: np.ndarray, vy: np.ndarray, steps: int) -> np.ndarray:
    """Line-integral convolution: average ``texture`` (H, W, C) along the unit field (vx, vy)."""
    h, w = vx.shape
    out = texture.astype(np.float64).copy()
    for sign in (1.0, -1.0):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        for _ in range(steps):
            iy = np.clip(y.round().astype(int), 0, h - 1)
            ix = np.clip(x.round().astype(int), 0, w - 1)
            x = x + sign * vx[iy, ix]
            y = y + sign * vy[iy, ix]
            out += texture[
                np.clip(y.round().astype(int), 0, h - 1), np.clip(x, 0, w - 1).round().astype(int)
            ]
    return out / (2 * steps + 1)


def swirl_painting(size: int = 256, seed: int = 0, palette: str = "starry") -> np.ndarray:
    """Paint a (size, size, 3) float32 RGB image in [0, 1] of swirling strokes.

    Args:
        size: side in pixels.
        seed: the same seed paints the same picture.
        palette: a key of :data:`PALETTES`.
    """
    rng = np.random.default_rng(seed)
    colours = PALETTES[palette]
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size  # (size, size) in [0, 1)
    # flow: a wind that waves, plus vortices (swirls) around random centres
    vx = np.ones_like(x) * 0.6
    vy = 0.35 * np.sin(6 * x + 3 * _smooth_noise(rng, size, 3))
    swirl = np.zeros_like(x)
    centres = rng.random((5, 2)) * [1.0, 0.7]
    for cy, cx in centres:
        dy, dx = y - cy, x - cx
        r2 = dx * dx + dy * dy
        strength = np.exp(-r2 / 0.02)
        vx += -dy / np.sqrt(r2 + 1e-4) * strength * 3
        vy += dx / np.sqrt(r2 + 1e-4) * strength * 3
        swirl = np.maximum(swirl, strength)
    norm = np.sqrt(vx * vx + vy * vy) + 1e-8
    vx, vy = vx / norm, vy / norm
    # colour: dark at the bottom, swirls and stars bright
    level = 0.8 * _smooth_noise(rng, size, 5) + 0.3 * (1 - y) + 0.9 * swirl
    stars = np.zeros_like(x)
    for sy, sx in rng.random((9, 2)) * [0.6, 1.0]:
        r = np.sqrt((y - sy) ** 2 + (x - sx) ** 2)
        stars = np.maximum(stars, np.exp(-((r / 0.03) ** 2)) + 0.5 * np.exp(-((r / 0.06) ** 2)))
    level = level + stars
    # colour noise in blobs of a few pixels (the width of a brush), smeared into strokes below
    blob = max(2, size // 96)
    cells = -(-size // blob)
    jitter = np.kron(rng.normal(0, 0.35, (cells, cells)), np.ones((blob, blob)))[:size, :size]
    index = np.clip((level + jitter) / level.max() * (len(colours) - 1), 0, len(colours) - 1)
    lo = np.floor(index).astype(int)
    hi = np.minimum(lo + 1, len(colours) - 1)
    frac = (index - lo)[..., None]
    base = colours[lo] * (1 - frac) + colours[hi] * frac  # (size, size, 3)
    shade = np.kron(0.7 + 0.6 * rng.random((cells, cells)), np.ones((blob, blob)))
    shade = shade[:size, :size, None]  # stroke brightness noise
    painted = _lic(base * shade, vx, vy, steps=max(4, size // 20))
    # a dark band of hills at the bottom, itself stroked along the wind
    hills = y > 0.78 + 0.06 * np.sin(9 * x + 1.0)
    painted[hills] = painted[hills] * 0.45
    return np.clip(painted, 0, 1).astype(np.float32)
