"""The model registry, as timm does it: ``@register_model``, ``create_model``, ``list_models``.

Every public builder (``vgg16``, ``resnet50``, ...) is a function decorated with
:func:`register_model`; the registry maps its name to the builder and a little metadata (the
input size it expects). The registry is the one module-level global of ``cnnkit.models``.

Example:
    >>> from cnnkit.models import create_model, list_models
    >>> list_models("resnet1*")
    ['resnet18', 'resnet101', 'resnet110', 'resnet152']
    >>> model = create_model("resnet18", num_classes=5)
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from cnnkit.errors import PATH_LIMIT, NotFoundError, shorten

#: Modules whose import registers builders. Imported lazily by the lookup functions.
_BUILDER_MODULES = (
    "cnnkit.models.lenet",
    "cnnkit.models.alexnet",
    "cnnkit.models.vgg",
    "cnnkit.models.resnet",
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one builder."""

    name: str  # registry name, e.g. "vgg16"
    builder: Callable[..., Any]  # the public builder function
    input_size: tuple[int, int, int]  # (C, H, W) the network was designed for
    default_num_classes: int  # num_classes when the caller gives none
    summary: str  # first line of the builder's docstring


_REGISTRY: dict[str, ModelInfo] = {}


@overload
def register_model(fn: F) -> F: ...


@overload
def register_model(
    fn: None = None,
    *,
    input_size: tuple[int, int, int] = (3, 224, 224),
    default_num_classes: int = 1000,
) -> Callable[[F], F]: ...


def register_model(
    fn: Callable[..., Any] | None = None,
    *,
    input_size: tuple[int, int, int] = (3, 224, 224),
    default_num_classes: int = 1000,
) -> Any:
    """Register a builder under its function name; usable bare or with keyword arguments.

    Args:
        fn: the builder (when used bare as ``@register_model``).
        input_size: the ``(C, H, W)`` input the architecture was designed for; the default of
            ``cnnkit summary``.
        default_num_classes: classes when :func:`create_model` is given none.
    """

    def decorate(f: F) -> F:
        name = f.__name__
        if name in _REGISTRY and _REGISTRY[name].builder is not f:
            raise ValueError(f"model name {name!r} is registered twice")
        doc = (f.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=f,
            input_size=tuple(input_size),  # type: ignore[arg-type]
            default_num_classes=default_num_classes,
            summary=doc[0] if doc else "",
        )
        return f

    if fn is not None:
        return decorate(fn)  # type: ignore[arg-type]
    return decorate


def _load_builders() -> None:
    for module in _BUILDER_MODULES:
        importlib.import_module(module)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the shell-style ``pattern`` (fnmatch), sorted."""
    _load_builders()
    return sorted((n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)


def _natural_key(name: str) -> list[Any]:
    """Sort ``resnet8`` before ``resnet18`` before ``resnet101``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; :class:`NotFoundError` with close matches if unknown.

    Case and ``-``/``_`` do not matter: ``"VGG16"`` and ``"LeNet5-Modern"`` are found.
    """
    _load_builders()
    if name not in _REGISTRY:
        name = name.strip().lower().replace("-", "_")
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `cnnkit models`"
        raise NotFoundError(f"unknown model {shorten(name, PATH_LIMIT)}", hint=hint)
    return _REGISTRY[name]


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    weights: Any = None,
    **kwargs: Any,
) -> Any:
    """Build the registered model ``name``.

    Args:
        name: a registry name, see :func:`list_models`.
        num_classes: size of the last layer. ``None`` means the architecture's default:
            1000 (ImageNet) for AlexNet, VGG and the ImageNet ResNets; 10 for LeNet-5 and the
            CIFAR-style ResNets.
        weights: ``None`` (random init), ``"DEFAULT"`` (the published checkpoint of
            :mod:`cnnkit.models.weights`, from the torch hub cache), a record name, or a path.
        **kwargs: passed to the builder (``residual=False``, ``in_channels=1``, ...).

    Returns:
        The ``torch.nn.Module``.
    """
    info = model_info(name)
    if num_classes is None:
        num_classes = info.default_num_classes
    if weights is not None:  # find (or download) the file before allocating the model
        from cnnkit.models.weights import resolve_checkpoint, weights_source

        resolve_checkpoint(
            weights_source(info.name, weights),
            download=bool(kwargs.get("download", False)),
            progress=bool(kwargs.get("progress", True)),
        )
    return info.builder(weights=weights, num_classes=num_classes, **kwargs)
