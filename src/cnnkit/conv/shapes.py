"""Shape arithmetic of the notes: output sizes, "same"/"valid" padding, argument checks.

With an n x n input, an f x f filter, padding p and stride s the output is
``floor((n + 2p - f) / s) + 1`` wide; "same" padding for stride 1 is ``p = (f - 1) / 2``.
"""

from __future__ import annotations

import numpy as np

from cnnkit.errors import ShapeError

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | str
# (top, bottom, left, right), the amounts of zeros added on each side of H and W.
Pad4 = tuple[int, int, int, int]


def output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output length ``floor((n + 2p - f) / s) + 1`` of a convolution or pooling along one axis.

    Args:
        n: input length (n_H or n_W).
        f: filter length.
        p: zero padding on each side.
        s: stride.

    Raises:
        ShapeError: when the (padded) input is smaller than the filter ("if the box doesn't fit,
            don't proceed"), or when f, s < 1 or n, p < 0.

    >>> output_size(6, 3)
    4
    >>> output_size(7, 3, p=0, s=2)
    3
    """
    n, f, p, s = int(n), int(f), int(p), int(s)
    if f < 1 or s < 1 or n < 0 or p < 0:
        raise ShapeError(
            f"invalid sizes n={n}, f={f}, p={p}, s={s}",
            hint="need n >= 0, f >= 1, p >= 0, s >= 1",
        )
    if n + 2 * p < f:
        raise ShapeError(
            f"filter of size {f} does not fit an input of size {n} with padding {p}",
            hint="use a smaller filter, more padding or a larger input",
        )
    return (n + 2 * p - f) // s + 1


def same_padding(f: int) -> int:
    """Padding ``p = (f - 1) / 2`` that keeps the size at stride 1, for odd f.

    Raises:
        ShapeError: for an even f, where no symmetric padding keeps the size (an even filter
            needs one more zero on one side: use ``padding="same"`` in :func:`conv2d`, which
            puts the extra zero on the bottom/right as PyTorch does).
    """
    f = int(f)
    if f < 1:
        raise ShapeError(f"filter size must be >= 1, got {f}")
    if f % 2 == 0:
        raise ShapeError(
            f"no symmetric 'same' padding for an even filter size {f}",
            hint="(f - 1) / 2 is not an integer; use an odd filter or padding='same' in conv2d",
        )
    return (f - 1) // 2


def pair(v: IntPair, name: str) -> tuple[int, int]:
    """An int or a pair of ints as ``(h, w)``."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        a, b = v
        if all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in (a, b)):
            return int(a), int(b)
    raise ShapeError(f"{name} must be an int or a pair of ints, got {v!r}")


def resolve_padding(padding: Padding, kernel: tuple[int, int], stride: tuple[int, int]) -> Pad4:
    """Turn ``padding`` (int, (ph, pw), "valid" or "same") into (top, bottom, left, right).

    "same" follows PyTorch: only stride 1, total padding ``f - 1`` per axis with the odd zero
    (for even f) at the bottom/right.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return 0, 0, 0, 0
        if mode == "same":
            if stride != (1, 1):
                raise ShapeError(
                    f"padding='same' needs stride 1, got stride {stride}",
                    hint="give an explicit padding for strided convolutions",
                )
            fh, fw = kernel
            return (fh - 1) // 2, fh - 1 - (fh - 1) // 2, (fw - 1) // 2, fw - 1 - (fw - 1) // 2
        raise ShapeError(
            f"padding string must be 'valid' or 'same', got {padding!r}",
            hint="or give an int or a pair (ph, pw)",
        )
    ph, pw = pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ShapeError(f"padding must be >= 0, got {padding!r}")
    return ph, ph, pw, pw


def check_ndim(a: np.ndarray, ndim: int, name: str, layout: str) -> None:
    """Raise ShapeError unless ``a`` has ``ndim`` dimensions (layout names them)."""
    if a.ndim != ndim:
        raise ShapeError(
            f"{name} must be {ndim}-D {layout}, got shape {tuple(a.shape)}",
            hint="add a batch axis with x[None]" if ndim == 4 and a.ndim == 3 else None,
        )


def out_hw(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], p4: Pad4):
    """(n_H, n_W) of the output for an input (h, w), with possibly asymmetric padding."""
    fh, fw = kernel
    sh, sw = stride
    top, bottom, left, right = p4
    if h + top + bottom < fh or w + left + right < fw:
        raise ShapeError(
            f"filter {fh}x{fw} does not fit the padded input "
            f"{h + top + bottom}x{w + left + right} (input {h}x{w})",
            hint="use a smaller filter, more padding or a larger input",
        )
    return (h + top + bottom - fh) // sh + 1, (w + left + right - fw) // sw + 1
