"""The layer table of the notes: each layer's output n_H x n_W x n_C, parameters, multiply-adds.

One forward pass with hooks on the leaf modules records what each layer outputs. The pass runs on
the ``meta`` device when the model lives there (no memory, no arithmetic; the first pass in a
process pays PyTorch's import of its shape functions, ~3 s), or on a real batch of one otherwise.

Counting rules, per image:

- Conv2d: MACs = n_H * n_W * n_C (outputs) * f * f * n_C_prev / groups; params = weights + biases.
- Linear: MACs = n_in * n_out.
- A module with a ``macs(out_shape)`` method (LeNet-5's C3, subsampling and RBF) counts itself.
- Everything else (ReLU, pooling, batch norm, adds) counts 0 MACs, as the notes do.

Example:
    >>> from cnnkit.models.summary import summarize_model
    >>> s = summarize_model("vgg16")
    >>> s.total_params, round(s.total_macs / 1e9, 2)
    (138357544, 15.47)
    >>> print(s.format_table())
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from cnnkit.errors import ShapeError, first_line, shorten

#: Layer types left out of the table unless ``all_layers=True`` (no parameters, shape kept).
ELEMENTWISE = ("ReLU", "ReLU6", "Dropout", "ScaledTanh", "Identity", "Tanh", "Sigmoid")


@dataclass(frozen=True)
class LayerRow:
    """One row of the table."""

    name: str  # dotted module name, e.g. "features.0" or "layer1.0.conv1"
    kind: str  # module class, e.g. "Conv2d"
    output: tuple[int, ...]  # per-image output shape: (n_C, n_H, n_W) or (n_features,)
    params: int  # parameters owned by this layer (0 when the layer is called a second time)
    macs: int  # multiply-adds per image

    @property
    def shape_text(self) -> str:
        """``"224 x 224 x 64"`` (n_H x n_W x n_C, the notes' order) or ``"4096"``."""
        if len(self.output) == 3:
            c, h, w = self.output
            return f"{h} x {w} x {c}"
        return " x ".join(str(d) for d in self.output)


@dataclass(frozen=True)
class ModelSummary:
    """The table and its totals."""

    model: str  # registry name or class name
    input_size: tuple[int, ...]  # (n_C, n_H, n_W)
    rows: list[LayerRow] = field(repr=False)
    total_params: int  # every parameter of the model
    trainable_params: int  # those with requires_grad
    total_macs: int  # multiply-adds per image, all layers (shown or not)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"model", "input_size", "rows": [...], "total_params", ...}``."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        for row, src in zip(d["rows"], self.rows, strict=True):
            row["output"] = list(src.output)
            row["output_text"] = src.shape_text
        return d

    def format_table(self) -> str:
        """A fixed-width text table with the totals at the bottom."""
        c, h, w = (list(self.input_size) + [0, 0, 0])[:3]
        head = ("layer", "type", "output (n_H x n_W x n_C)", "parameters", "multiply-adds")
        body = [(r.name, r.kind, r.shape_text, f"{r.params:,}", f"{r.macs:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(5)]
        total_line = ("total", "", "", f"{self.total_params:,}", f"{self.total_macs:,}")
        widths = [max(wd, len(t)) for wd, t in zip(widths, total_line, strict=True)]

        def fmt(row: tuple[str, ...]) -> str:
            left = "  ".join(row[i].ljust(widths[i]) for i in range(3))
            right = "  ".join(row[i].rjust(widths[i]) for i in range(3, 5))
            return f"{left}  {right}".rstrip()

        rule = "-" * len(fmt(head))
        lines = [f"{self.model}: input {h} x {w} x {c} (n_H x n_W x n_C)", fmt(head), rule]
        lines += [fmt(r) for r in body]
        lines += [rule, fmt(total_line)]
        lines.append(
            f"{self.total_params:,} parameters ({human(self.total_params)}), "
            f"{self.trainable_params:,} trainable; "
            f"{human(self.total_macs)} multiply-adds per image"
        )
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML ``<table>`` with the same rows and totals."""
        esc = html.escape
        out = [
            "<table>",
            "<tr><th>layer</th><th>type</th><th>output n<sub>H</sub> x n<sub>W</sub> x "
            "n<sub>C</sub></th><th>parameters</th><th>multiply-adds</th></tr>",
        ]
        for r in self.rows:
            out.append(
                f'<tr><td style="text-align:left">{esc(r.name)}</td>'
                f'<td style="text-align:left">{esc(r.kind)}</td><td>{esc(r.shape_text)}</td>'
                f"<td>{r.params:,}</td><td>{r.macs:,}</td></tr>"
            )
        out.append(
            f'<tr><th style="text-align:left">total</th><th></th><th></th>'
            f"<th>{self.total_params:,}</th><th>{self.total_macs:,} "
            f"({human(self.total_macs)})</th></tr>"
        )
        out.append("</table>")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format_table()


def human(n: int) -> str:
    """1_234 -> "1.23 K", 138_357_544 -> "138.36 M", 15_470_264_320 -> "15.47 G"."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def parse_input_size(text: str, default_channels: int = 3) -> tuple[int, int, int]:
    """``"3x224x224"`` -> (3, 224, 224); ``"224x224"`` (HxW) or ``"224"`` (NxN) use
    ``default_channels``.

    Two numbers whose first is 1 to 4 (``"1x28"``, ``"3x224"``) are refused as ambiguous: they
    read as a channel count and a height with the width missing, more likely than as an image of
    height 1 to 4.

    Raises:
        ShapeError: anything else, or a zero.
    """
    compact = re.sub(r"\s+", "", text.lower())
    ok = re.fullmatch(r"\d{1,9}([x,]\d{1,9}){0,2}", compact)  # 9 digits: int() stays cheap
    dims = [int(p) for p in re.split(r"[x,]", compact)] if ok else []
    if not dims or min(dims) < 1:
        raise ShapeError(
            f"input size must be CxHxW, HxW or N (NxN) with positive integers. Got {shorten(text)}",
            hint="e.g. --input 3x224x224",
        )
    if len(dims) == 2 and dims[0] <= 4 and dims[0] != dims[1]:
        raise ShapeError(
            f"input size {shorten(text)} is ambiguous: it reads as CxH with W missing",
            hint=f"give CxHxW, e.g. {dims[0]}x{dims[1]}x{dims[1]}, or a square size N",
        )
    if len(dims) == 1:
        dims = [default_channels, dims[0], dims[0]]
    elif len(dims) == 2:
        dims = [default_channels, *dims]
    return dims[0], dims[1], dims[2]


def _first_conv_channels(model: Any) -> int | None:
    """``in_channels`` of the model's first ``Conv2d`` (its n_C of the input), if any."""
    from torch import nn

    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            return int(mod.in_channels)
    return None


def _runs(model: Any, input_size: tuple[int, ...], device: Any) -> bool:
    import torch

    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_size), device=device))
    except (RuntimeError, ValueError):
        return False
    return True


def _min_side(
    model: Any, input_size: tuple[int, ...], device: Any, limit: int = 4096
) -> int | None:
    """The smallest square n_H = n_W >= the given size that the model runs on (None: none)."""
    c, *hw = input_size
    lo = max(hw) if hw else 1  # fails (or is not square); search above it
    hi = max(2 * lo, 8)
    while not _runs(model, (c, hi, hi), device):
        lo, hi = hi, 2 * hi
        if hi > limit:
            return None
    while hi - lo > 1:  # invariant: lo fails (or is too small), hi runs
        mid = (lo + hi) // 2
        if _runs(model, (c, mid, mid), device):
            hi = mid
        else:
            lo = mid
    return hi


def _does_not_fit(
    model: Any, input_size: tuple[int, ...], title: str, device: Any, exc: Exception
) -> ShapeError:
    """The one-line :class:`ShapeError` for a forward pass that failed on ``input_size``."""
    size = "x".join(str(d) for d in input_size)
    if isinstance(exc, ShapeError):  # the model's own check (LeNet-5's 32x32): keep its hint
        return ShapeError(f"input {size} does not fit {title}: {exc.what}", hint=exc.hint)
    want_c = _first_conv_channels(model)
    if want_c is not None and want_c != input_size[0]:
        return ShapeError(
            f"input {size} has {input_size[0]} channels but {title} was built for {want_c}",
            hint=f"build it with in_channels={input_size[0]} (cnnkit summary: --in-channels "
            f"{input_size[0]})",
        )
    side = _min_side(model, input_size, device)
    if side is not None:
        return ShapeError(
            f"input {size} is too small for {title}: a layer's output would be 0x0",
            hint=f"use at least {side}x{side}",
        )
    return ShapeError(
        f"input {size} does not fit {title}: {first_line(exc, limit=200)}",
        hint="give the input size the network was designed for (see `cnnkit models`)",
    )


def _macs(module: Any, inp: Any, out_shape: tuple[int, ...]) -> int:
    from torch import nn

    per_image_out = 1
    for d in out_shape:
        per_image_out *= d
    if hasattr(module, "macs") and callable(module.macs):
        return int(module.macs(out_shape))
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        k = 1
        for d in module.kernel_size:
            k *= d
        return per_image_out * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return per_image_out * module.in_features
    return 0


def summarize(
    model: Any,
    input_size: tuple[int, ...] = (3, 224, 224),
    *,
    name: str | None = None,
    all_layers: bool = False,
) -> ModelSummary:
    """Run one forward pass of a (1, *input_size) input and tabulate the leaf layers.

    Args:
        model: a ``torch.nn.Module``; it runs on the device of its parameters (``meta``: shapes
            only), in eval mode (restored afterwards).
        input_size: (n_C, n_H, n_W) of one image.
        name: title of the table (default: the class name).
        all_layers: also list parameter-free elementwise layers (ReLU, dropout, tanh).

    Raises:
        ShapeError: the input is too small (or of the wrong channel count) for the network.
    """
    import torch

    params = list(model.parameters())
    buffers = list(model.buffers())
    device = (params or buffers or [torch.empty(0)])[0].device
    records: list[LayerRow] = []
    seen: set[int] = set()
    handles = []

    def hook(mod: Any, inp: Any, out: Any, *, qualname: str) -> None:
        out_t = out[0] if isinstance(out, tuple | list) else out
        shape = tuple(int(d) for d in out_t.shape[1:]) if hasattr(out_t, "shape") else ()
        first = id(mod) not in seen
        seen.add(id(mod))
        own = sum(p.numel() for p in mod.parameters(recurse=False)) if first else 0
        records.append(LayerRow(qualname, type(mod).__name__, shape, own, _macs(mod, inp, shape)))

    for qualname, mod in model.named_modules():
        if qualname and not any(True for _ in mod.children()):
            handles.append(mod.register_forward_hook(_bind(hook, qualname)))
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *input_size), device=device)
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError) as exc:
        for h in handles:
            h.remove()
        handles = []
        raise _does_not_fit(model, input_size, name or type(model).__name__, device, exc) from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = records if all_layers else [r for r in records if r.kind not in ELEMENTWISE]
    return ModelSummary(
        model=name or type(model).__name__,
        input_size=tuple(input_size),
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in records),
    )


def _bind(hook: Any, qualname: str) -> Any:
    def bound(mod: Any, inp: Any, out: Any) -> None:
        hook(mod, inp, out, qualname=qualname)

    return bound


def summarize_model(
    name: str,
    input_size: tuple[int, ...] | None = None,
    *,
    num_classes: int | None = None,
    all_layers: bool = False,
    **kwargs: Any,
) -> ModelSummary:
    """Build registry model ``name`` on the meta device (no memory) and summarise it.

    ``input_size`` defaults to the size the architecture was designed for (3x224x224; 1x32x32
    for LeNet-5; 3x227x227 for alexnet2012; 3x32x32 for the CIFAR ResNets). ``kwargs`` go to the
    builder (``residual=False``, ``in_channels=1``).
    """
    import torch

    from cnnkit.models.registry import create_model, model_info

    info = model_info(name)
    if input_size is None:
        input_size = info.input_size
        if "in_channels" in kwargs:
            input_size = (int(kwargs["in_channels"]), *input_size[1:])
    with torch.device("meta"):
        model = create_model(info.name, num_classes=num_classes, **kwargs)
    return summarize(model, input_size, name=info.name, all_layers=all_layers)
