"""Read dlib's serialized face ResNet (``dlib_face_recognition_resnet_model_v1.dat``) without dlib.

The file is dlib's ``serialize(net)`` output (dlib/serialize.h, dlib/dnn/core.h, layers.h):

- integer of any width: one control byte (0x80 = negative, low 4 bits = n bytes, 1..8), then n
  little-endian magnitude bytes;
- string: integer length, then the bytes; bool: one ASCII byte ``'1'`` or ``'0'``;
- float/double: an integer mantissa m then an integer exponent e, value m * 2**e; the exponents
  32000, 32001, 32002 stand for +inf, -inf and NaN;
- ``resizable_tensor``: integer version (2), integers n, k, nr, nc, then n*k*nr*nc raw little-endian
  float32 values (NCHW); ``alias_tensor``: integer version (1) and four integers, no data.

The network nests outermost first: the loss layer's version, name and fields, then every
``add_layer`` / tag / skip writes its version before its subnetwork. So the file holds a run of
version integers, then the input layer, then every computational layer's record in forward order,
each followed by 3 bools and its cached tensors (x_grad, cached_output, params_grad or grad_final;
the layer on the input adds an integer sample_expansion_factor when its version is 3).

:func:`read_dlib_net` returns that as plain data: a :class:`DlibNet` of :class:`LayerRecord` in
forward order with NumPy parameters. :mod:`cnnkit.face.encoder` turns it into a PyTorch model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import WeightsError

_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class DlibFormatError(WeightsError):
    """The bytes do not follow dlib's serialization format where a value was expected."""


class Reader:
    """Sequential reader of dlib's scalar encodings over a bytes object.

    Example:
        >>> Reader(b"\\x01\\x05").integer()
        5
        >>> Reader(b"\\x81\\x05").integer()
        -5
    """

    def __init__(self, data: bytes, *, name: str = "<bytes>"):
        self.data = memoryview(data)
        self.pos = 0
        self.name = name

    def _fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(
            f"not a dlib network file: {what} at byte {self.pos}",
            path=self.name,
            hint="give dlib_face_recognition_resnet_model_v1.dat or a cnnkit checkpoint",
        )

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self._fail(f"truncated (wanted {n} bytes, {self.remaining()} left)")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def integer(self) -> int:
        """An integer: control byte (0x80 sign, low nibble = byte count), then LE magnitude."""
        (control,) = self.raw(1)
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            raise self._fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.raw(size), "little")
        return -value if control & 0x80 else value

    def peek_int(self) -> int | None:
        """The next integer without consuming it, or None if the bytes are not one."""
        start = self.pos
        try:
            return self.integer()
        except DlibFormatError:
            return None
        finally:
            self.pos = start

    def floating(self) -> float:
        """A float or double: mantissa * 2**exponent, with inf/-inf/NaN exponent codes."""
        mantissa = self.integer()
        exponent = self.integer()
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return math.ldexp(float(mantissa), exponent)

    def boolean(self) -> bool:
        (b,) = self.raw(1)
        if b not in (ord("0"), ord("1")):
            self.pos -= 1
            raise self._fail(f"bad bool byte 0x{b:02x}")
        return b == ord("1")

    def string(self) -> str:
        n = self.integer()
        if n < 0 or n > 1 << 20:
            raise self._fail(f"bad string length {n}")
        return self.raw(n).decode("latin-1")

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: version 2, n, k, nr, nc, then n*k*nr*nc LE float32 (NCHW)."""
        version = self.integer()
        if version != 2:
            raise self._fail(f"unknown tensor version {version}")
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0:
            raise self._fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self.raw(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.integer()
        if version != 1:
            raise self._fail(f"unknown alias_tensor version {version}")
        n, k, nr, nc = (self.integer() for _ in range(4))
        return (n, k, nr, nc)


@dataclass
class LayerRecord:
    """One computational layer in forward order: dlib's name and its fields.

    ``params`` is the layer's flat parameter tensor (or None); ``fields`` holds the rest
    (num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x, mode, num_outputs, ...).
    """

    name: str
    params: np.ndarray | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib network: loss, input and layer records in forward order."""

    loss: str
    loss_fields: dict[str, float]
    input_name: str
    input_mean: tuple[float, float, float]  # RGB channel means subtracted before / 256
    input_size: tuple[int, int]  # (nr, nc)
    layers: list[LayerRecord]

    def n_params(self) -> int:
        return sum(0 if r.params is None else r.params.size for r in self.layers)


def _read_layer(r: Reader) -> LayerRecord:
    """Read one layer record (the versions this file uses; see the module docstring)."""
    name = r.string()
    if name == "con_4":
        params = r.tensor()
        keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
        fields: dict[str, Any] = {k: r.integer() for k in keys}
        fields["filters"] = r.alias_tensor()
        fields["biases"] = r.alias_tensor()
        fields["multipliers"] = tuple(r.floating() for _ in range(4))
        return LayerRecord(name, params, fields)
    if name == "affine_":
        params = r.tensor()
        fields = {"gamma": r.alias_tensor(), "beta": r.alias_tensor(), "mode": r.integer()}
        return LayerRecord(name, params, fields)
    if name == "bn_con2":  # a batch norm that dlib's affine_ reads and freezes (the MMOD file)
        params = r.tensor()
        fields = {"gamma": r.alias_tensor(), "beta": r.alias_tensor()}
        for key in ("means", "invstds", "running_means", "running_variances"):
            fields[key] = r.tensor()
        fields["num_updates"] = r.integer()
        fields["running_stats_window_size"] = r.integer()
        fields["multipliers"] = tuple(r.floating() for _ in range(4))
        fields["eps"] = r.floating()
        return LayerRecord(name, params, fields)
    if name in ("relu_", "add_prev_"):
        return LayerRecord(name)
    if name in ("max_pool_2", "avg_pool_2"):
        pool_keys = ("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
        return LayerRecord(name, None, {k: r.integer() for k in pool_keys})
    if name == "fc_2":
        fields = {"num_outputs": r.integer(), "num_inputs": r.integer()}
        params = r.tensor()
        fields["weights"] = r.alias_tensor()
        fields["biases"] = r.alias_tensor()
        fields["bias_mode"] = r.integer()
        fields["multipliers"] = tuple(r.floating() for _ in range(4))
        return LayerRecord(name, params, fields)
    raise DlibFormatError(
        f"unsupported dlib layer {name!r}",
        path=r.name,
        hint="only the layers of dlib's face ResNet and MMOD face detector are supported",
    )


def parse_dlib_net(data: bytes, *, name: str = "<bytes>") -> DlibNet:
    """Parse the bytes of a serialized dlib ``loss_metric`` network; see the module docstring."""
    r = Reader(data, name=name)
    loss_version = r.integer()
    loss = r.string()
    if loss_version != 1 or loss != "loss_metric_2":
        raise DlibFormatError(
            f"expected a loss_metric_2 network, found {loss!r} (version {loss_version})",
            path=name,
            hint="give dlib_face_recognition_resnet_model_v1.dat",
        )
    loss_fields = {"margin": r.floating(), "dist_thresh": r.floating()}

    # The run of version integers: 1 = tag/skip, 2 = add_layer, 3 = add_layer over the input.
    versions: list[int] = []
    while r.peek_int() in (1, 2, 3):
        versions.append(r.integer())
    layer_versions = [v for v in versions if v >= 2][::-1]  # forward order

    input_name = r.string()
    if input_name != "input_rgb_image_sized":
        raise DlibFormatError(f"unsupported input layer {input_name!r}", path=name)
    input_mean = (r.floating(), r.floating(), r.floating())
    input_size = (r.integer(), r.integer())

    layers: list[LayerRecord] = []
    for version in layer_versions:
        layers.append(_read_layer(r))
        for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, ..._disabled
            r.boolean()
        for _ in range(3):  # x_grad, cached_output, params_grad (grad_final on the input)
            r.tensor()
        if version == 3:
            r.integer()  # sample_expansion_factor
    if r.remaining():
        raise DlibFormatError(f"{r.remaining()} unexpected bytes after the last layer", path=name)
    return DlibNet(loss, loss_fields, input_name, input_mean, input_size, layers)  # type: ignore[arg-type]


def read_dlib_net(path: str | Path) -> DlibNet:
    """Read and parse a dlib network file (e.g. ``dlib_face_recognition_resnet_model_v1.dat``).

    Raises:
        WeightsError: the file is missing or not in dlib's format.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read the model file ({exc.strerror})", path=path) from exc
    return parse_dlib_net(data, name=str(path))
