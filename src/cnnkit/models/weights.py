"""Published checkpoints: where they live, how to check them, how to load them.

Each architecture with a published ImageNet checkpoint has a :class:`WeightsRecord`: the file name
(torchvision's, e.g. ``vgg19-dcbb9e9d.pth``), the URL, the SHA-256 prefix that the file name
carries, and the preprocessing the weights expect (resize 256, centre crop 224, ImageNet mean/std).

:func:`load_weights` finds a checkpoint (a given path, or a record's file in the torch hub cache
``$TORCH_HOME/hub/checkpoints``), checks its hash, loads it with ``torch.load(weights_only=True)``
and copies it into a model, explaining every mismatch. It downloads only when asked
(``download=True``); nothing in cnnkit downloads on its own.

Example:
    >>> from cnnkit.models import create_model, load_weights
    >>> model = create_model("vgg19")
    >>> load_weights(model, "vgg19")          # $TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth
    >>> load_weights(model, "my-vgg19.pt")    # a file of your own
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import WeightsError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_URL_BASE = "https://download.pytorch.org/models/"
#: The hash part of a file name such as ``resnet50-0676ba61.pth``: torch.hub's convention
#: ``filename-<sha256>.ext``, at least 8 hex digits, just before the extension.
_HASH_RE = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class WeightsRecord:
    """One published checkpoint and the preprocessing it expects."""

    arch: str  # registry name of the architecture, e.g. "vgg19"
    file: str  # file name in the hub cache, e.g. "vgg19-dcbb9e9d.pth"
    num_classes: int = 1000  # classes of the checkpoint's head
    input_size: tuple[int, int, int] = (3, 224, 224)  # (C, H, W) after the crop
    resize: int = 256  # shorter side before the centre crop
    mean: tuple[float, float, float] = IMAGENET_MEAN  # per-channel mean, RGB in [0, 1]
    std: tuple[float, float, float] = IMAGENET_STD  # per-channel std
    dataset: str = "ImageNet-1k"

    @property
    def url(self) -> str:
        return _URL_BASE + self.file

    @property
    def sha256_prefix(self) -> str:
        """The leading hex digits of the file's SHA-256, as written in its name."""
        prefix = hash_prefix_of(self.file)
        assert prefix is not None, self.file
        return prefix


def _records(*items: tuple[str, str]) -> dict[str, WeightsRecord]:
    return {arch: WeightsRecord(arch=arch, file=file) for arch, file in items}


#: Published torchvision ImageNet checkpoints, by architecture name.
WEIGHTS: dict[str, WeightsRecord] = _records(
    ("alexnet", "alexnet-owt-7be5be79.pth"),
    ("vgg11", "vgg11-8a719046.pth"),
    ("vgg11_bn", "vgg11_bn-6002323d.pth"),
    ("vgg13", "vgg13-19584684.pth"),
    ("vgg13_bn", "vgg13_bn-abd245e5.pth"),
    ("vgg16", "vgg16-397923af.pth"),
    ("vgg16_bn", "vgg16_bn-6c64b313.pth"),
    ("vgg19", "vgg19-dcbb9e9d.pth"),
    ("vgg19_bn", "vgg19_bn-c79401a0.pth"),
    ("resnet18", "resnet18-f37072fd.pth"),
    ("resnet34", "resnet34-b627a593.pth"),
    ("resnet50", "resnet50-0676ba61.pth"),
    ("resnet101", "resnet101-63fe2227.pth"),
    ("resnet152", "resnet152-394f9c45.pth"),
)


def hash_prefix_of(file_name: str) -> str | None:
    """The SHA-256 prefix in a name like ``vgg19-dcbb9e9d.pth``, or ``None`` if it has none."""
    m = _HASH_RE.search(Path(file_name).name)
    return m.group(1) if m else None


def checkpoint_dir() -> Path:
    """The torch hub checkpoint folder: ``$TORCH_HOME/hub/checkpoints`` (default
    ``~/.cache/torch/hub/checkpoints``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def get_record(name: str) -> WeightsRecord | None:
    """The record for an architecture name (``"vgg19"``) or a file name
    (``"vgg19-dcbb9e9d.pth"``); ``None`` if there is none."""
    if name in WEIGHTS:
        return WEIGHTS[name]
    for record in WEIGHTS.values():
        if record.file == name:
            return record
    return None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (:func:`cnnkit.io.file_sha256`)."""
    from cnnkit.io import file_sha256

    return file_sha256(path)


def resolve_checkpoint(
    source: str | Path | WeightsRecord, *, download: bool = False, progress: bool = True
) -> tuple[Path, str | None]:
    """Find the file behind ``source``; return ``(path, expected_sha256_prefix_or_None)``.

    ``source`` is a :class:`WeightsRecord`, a record name (``"vgg19"`` or its file name), or a
    path. A record's file is looked up in :func:`checkpoint_dir`; if it is missing it is
    downloaded only when ``download`` is true, otherwise :class:`WeightsError` says which file to
    put where, and its URL.
    """
    record = source if isinstance(source, WeightsRecord) else None
    if record is None:
        path = Path(source)  # type: ignore[arg-type]
        if path.is_file():
            return path, hash_prefix_of(path.name)
        record = get_record(str(source))
        if record is None:
            raise WeightsError(
                "no such checkpoint file, and not a known weights name",
                path=path,
                hint=f"give a .pth/.pt file, or one of: {', '.join(sorted(WEIGHTS))}",
            )
    folder = checkpoint_dir()
    path = folder / record.file
    if path.is_file():
        return path, record.sha256_prefix
    if not download:
        raise WeightsError(
            f"checkpoint {record.file} for {record.arch} is not in {folder}",
            path=path,
            hint=f"download {record.url} into {folder} (or set TORCH_HOME), or pass --download",
        )
    import torch.hub

    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", record.url, path)
    try:
        torch.hub.download_url_to_file(
            record.url, str(path), hash_prefix=record.sha256_prefix, progress=progress
        )
    except Exception as exc:  # URLError, hash mismatch, disk full
        raise WeightsError(
            f"could not download {record.url}: {exc}",
            path=path,
            hint=f"download it by hand into {folder}",
        ) from exc
    return path, record.sha256_prefix


#: Files whose hash was verified in this process: (path, size, mtime_ns). Hashing VGG-19's
#: 548 MB takes about a second; a file that has not changed is not hashed twice.
_VERIFIED: set[tuple[str, int, int]] = set()


def verify_hash(path: Path, prefix: str) -> None:
    """Raise :class:`WeightsError` unless the file's SHA-256 starts with ``prefix``."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise WeightsError(
            f"SHA-256 {digest[: len(prefix)]}... does not match {prefix} (file name's hash)",
            path=path,
            hint="the file is corrupt, truncated or not the published one: delete it and "
            "download it again (a file of your own: drop the -<hex> part from its name)",
        )
    _VERIFIED.add(key)


def read_state_dict(path: Path) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``, unwrapped to a state dict.

    Accepts a raw state dict or a dict holding one under ``"state_dict"`` or ``"model"`` (as
    training checkpoints do); strips a ``"module."`` prefix left by DistributedDataParallel.
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        what, hint = describe_load_failure(path, exc)
        raise WeightsError(
            f"not a readable PyTorch checkpoint ({what})", path=path, hint=hint
        ) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsError(
            "the checkpoint holds no state dict of tensors",
            path=path,
            hint='save model.state_dict(), or a dict with it under "state_dict" or "model"',
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def describe_load_failure(path: Path, exc: BaseException) -> tuple[str, str]:
    """Why ``torch.load`` failed, in words: ``(what, hint)``, from the file's first bytes.

    PyTorch's own messages are unhelpful here (a text file gives ``KeyError: '101'``, the byte
    value of its first letter; a refused pickle suggests ``weights_only=False``, which would run
    the file's code), so they are never echoed: the file format is told from its magic number.
    """
    text = str(exc)
    if "Unsupported global" in text:
        m = re.search(r"GLOBAL (\S+)", text)
        obj = f" ({m.group(1)})" if m else ""
        return (
            f"it holds Python objects other than tensors{obj}, refused as unsafe",
            "save only model.state_dict() (tensors), e.g. torch.save(model.state_dict(), path)",
        )
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    if head.startswith(b"PK"):
        return (
            "damaged zip archive: truncated or corrupt",
            "download or save the file again",
        )
    if head[:1] == b"\x80":
        return (
            "damaged legacy pickle checkpoint: truncated or corrupt",
            "download or save the file again",
        )
    return (
        "unrecognised file format: not a file written by torch.save",
        "give a .pth/.pt file saved with torch.save(model.state_dict(), path)",
    )


def _first(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_weights(
    model: Any,
    source: str | Path | WeightsRecord,
    *,
    download: bool = False,
    progress: bool = True,
    check_hash: bool = True,
    replace_head: bool = False,
) -> Any:
    """Load a checkpoint into ``model`` (in place) and return the model.

    Args:
        model: a ``torch.nn.Module``.
        source: a path, a record name (``"vgg19"``, ``"resnet50-0676ba61.pth"``) or a
            :class:`WeightsRecord`; record files are looked up in ``$TORCH_HOME/hub/checkpoints``.
        download: fetch a missing record file from its URL (only then is the network used).
        progress: show a download progress bar.
        check_hash: compare the file's SHA-256 with the prefix in its name (``-dcbb9e9d.pth``).
            A file whose name carries no hash is loaded unchecked, with a log line saying so.
        replace_head: when the classifier head (the model's ``head_prefixes``, e.g. ``fc.``)
            has another class count than the checkpoint's, keep the model's fresh head instead
            of failing. Used for fine-tuning on a new set of classes.

    Raises:
        WeightsError: missing file (naming the file, the folder and the URL), hash mismatch,
            unreadable file, or keys/shapes that do not fit (the first few of each listed).
    """
    path, prefix = resolve_checkpoint(source, download=download, progress=progress)
    if check_hash and prefix is not None:
        verify_hash(path, prefix)
    elif prefix is None:
        log.debug("%s: no hash in the file name; loading without a hash check", path)
    state = read_state_dict(path)

    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if replace_head:
        heads = tuple(getattr(model, "head_prefixes", ()))
        dropped = [k for k in mismatched if k.startswith(heads)] if heads else []
        if dropped:
            log.info("%s: class count differs; keeping a new head for %s", path, _first(dropped))
            for k in dropped:
                del state[k]
            mismatched = [k for k in mismatched if k not in dropped]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {_first(missing)}")
        if unexpected:
            parts.append(f"unexpected {_first(unexpected)}")
        if mismatched:
            shapes = [
                f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched
            ]
            parts.append(f"shape mismatch {_first(shapes, 3)}")
        raise WeightsError(
            f"checkpoint does not fit {type(model).__name__}: " + "; ".join(parts),
            path=path,
            hint="build the architecture (and num_classes) the checkpoint was saved from",
        )
    model.load_state_dict(state, strict=False)
    log.info("loaded weights from %s", path)
    return model


def weights_source(arch: str, weights: Any) -> Any:
    """What ``weights=`` of a builder means: ``"DEFAULT"`` is the record of ``arch``; anything
    else (a path, a record name, a :class:`WeightsRecord`) is itself."""
    if isinstance(weights, str) and weights.upper() == "DEFAULT":
        if arch not in WEIGHTS:
            raise WeightsError(
                f"no published checkpoint for {arch}",
                hint=f"pass a path, or use one of: {', '.join(sorted(WEIGHTS))}",
            )
        return WEIGHTS[arch]
    return weights


def load_pretrained(model: Any, arch: str, weights: Any, num_classes: int, **kwargs: Any) -> Any:
    """What builders call for ``weights=...``: ``None`` leaves the model as initialised;
    ``"DEFAULT"`` means the record of ``arch``; anything else is passed to :func:`load_weights`.
    The head is kept fresh when ``num_classes`` differs from the checkpoint's."""
    if weights is None:
        return model
    return load_weights(model, weights_source(arch, weights), replace_head=True, **kwargs)
