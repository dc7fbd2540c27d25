"""The network whose activations define content and style: ImageNet VGG-19, or an offline default.

Which backbone (:func:`build_extractor`):

1. ``--weights PATH``: VGG-19 with those weights (torchvision's ``vgg19-dcbb9e9d.pth`` layout);
2. otherwise the torch hub cache file ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``;
3. otherwise a download, only with ``download=True``;
4. otherwise the **offline default**, ``random-vgg19``: VGG-19 with random weights from a fixed
   seed, made useful by a data-dependent normalisation (He, Wang and Hopcroft, NIPS 2016): each
   convolution, in order, is rescaled so that its output on the content image has unit variance
   per channel, biases are 0, and max pooling becomes average pooling. Nothing is read from disk,
   so results are reproducible anywhere.

The VGG itself comes from :mod:`cnnkit.models`; this module never defines one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnkit.errors import PATH_LIMIT, NotFoundError, WeightsError, shorten
from cnnkit.style.features import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor

log = logging.getLogger(__name__)

__all__ = [
    "BACKBONES",
    "Backbone",
    "build_extractor",
    "find_weights",
    "load_features_weights",
    "normalize_unit_variance_",
    "randomize_",
    "weights_notice",
]

#: ``auto``: ImageNet VGG-19 when its weights are found, else ``random-vgg19``.
BACKBONES = ("auto", "vgg19", "random-vgg19")
#: The seed of the offline default's random weights (fixed: same weights everywhere).
RANDOM_SEED = 20160
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


@dataclass
class Backbone:
    """What :func:`build_extractor` built: the extractor and how it was made."""

    extractor: FeatureExtractor
    name: str  # "vgg19" or "random-vgg19"
    source: str  # the weights file, or "seed <n>"


def weights_notice() -> str:
    """The one-line notice printed when the offline default is used."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        "note: no ImageNet VGG-19 weights found, using the offline random-weight VGG-19 "
        f"(ImageNet weights give better results: put {VGG19_FILE} in {hub} "
        f"(from {VGG19_URL}), pass --weights PATH, or add --download)"
    )


def _vgg_features(name: str = "vgg19") -> nn.Sequential:
    """``model.features`` of a cnnkit VGG (torchvision's layout), without its classifier.

    The stack comes from :func:`cnnkit.models.vgg.make_layers` and the model's configuration
    (VGG-19 is configuration "E"). It is built on the meta device and materialised empty, so
    nothing is initialised twice and the classifier (480 MB for VGG-19) is never allocated; the
    caller fills the kept layers from a checkpoint or from a seeded random draw.
    """
    from cnnkit.models.vgg import cfgs, make_layers

    configs = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
    if name not in configs:
        raise NotFoundError(
            f"unknown VGG {shorten(name, PATH_LIMIT)}", hint=f"choose from {', '.join(configs)}"
        )
    with torch.device("meta"):
        features = make_layers(cfgs[configs[name]])
    return features.to_empty(device="cpu")


def randomize_(features: nn.Sequential, seed: int = RANDOM_SEED) -> nn.Sequential:
    """Fill every convolution with He-normal random weights from ``seed``; biases 0. In place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in features:
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                weight = torch.randn(module.weight.shape, generator=generator)
                module.weight.copy_(weight * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.zero_()
    return features


def _std(xs: Sequence[torch.Tensor], per_channel: bool) -> torch.Tensor:
    """Unbiased std of ``(N, n_C, H, W)`` maps pooled over all positions of all ``xs``: per
    channel ``(n_C,)``, or one value expanded to ``(n_C,)``. Summed in slices of rows, in float64,
    so that no copy of a whole map is made."""
    n_c = xs[0].shape[1]
    s1 = torch.zeros(n_c, dtype=torch.float64)
    s2 = torch.zeros(n_c, dtype=torch.float64)
    count = 0
    for x in xs:
        count += x.numel() // n_c
        for rows in x.split(32, dim=2):
            r = rows.double()
            s1 += r.sum(dim=(0, 2, 3))
            s2 += r.square().sum(dim=(0, 2, 3))
    if not per_channel:
        s1, s2 = s1.sum().expand(n_c), s2.sum().expand(n_c)
        count *= n_c
    var = (s2 - s1 * s1 / count) / max(count - 1, 1)
    return var.clamp_min(0).sqrt().float()


def normalize_unit_variance_(
    extractor: FeatureExtractor,
    image: torch.Tensor | Sequence[torch.Tensor],
    per_channel: bool = True,
) -> FeatureExtractor:
    """Rescale each convolution so that its output on ``image`` has unit variance. In place.

    Layer by layer, in order: a[l] = W[l] * x + b[l] is computed on ``image`` ``(1, 3, H, W)``,
    then W[l] and b[l] are divided by std(a[l]) (per output channel when ``per_channel``, which
    makes every channel count equally in the Gram matrices). Since ReLU and pooling are
    positively homogeneous, later layers see the rescaled inputs. Given several images (of any
    sizes), the variance is pooled over all their positions.
    """
    images = [image] if isinstance(image, torch.Tensor) else list(image)
    with torch.no_grad():
        xs = [(x - extractor.mean) / extractor.std for x in images]
        for module in extractor.body:
            xs = [module(x) for x in xs]
            if isinstance(module, nn.Conv2d):
                std = _std(xs, per_channel).clamp_min(1e-8)  # (n_C,)
                module.weight.div_(std.view(-1, 1, 1, 1))
                if module.bias is not None:
                    module.bias.div_(std)
                for x in xs:  # in place: a 2048 px image's conv1 maps are 1 GB each
                    x.div_(std.view(1, -1, 1, 1).to(x.dtype))
    return extractor


def find_weights(weights: str | Path | None, download: bool = False) -> Path:
    """The ImageNet VGG-19 file to use: ``weights`` if given, else the torch hub cache file
    ``vgg19-dcbb9e9d.pth`` (downloaded into the cache only when ``download``).

    Raises:
        WeightsError: the file is missing (the message names it, its folder and its URL).
    """
    from cnnkit.models.weights import get_record, resolve_checkpoint

    if weights is not None and not Path(weights).is_file():
        record = get_record(str(weights))
        if record is None:
            raise WeightsError(
                "no such file",
                path=weights,
                hint=f"style needs ImageNet VGG-19 weights: {VGG19_FILE} from {VGG19_URL}, "
                "or a VGG-19 state dict, full or features-only",
            )
        if record.file != VGG19_FILE:
            raise WeightsError(
                f"style needs a VGG-19 checkpoint, not {record.arch}'s {record.file}",
                hint=f"give --weights vgg19 (that is {VGG19_FILE}) or a VGG-19 state dict file",
            )
    path, _ = resolve_checkpoint(weights if weights is not None else "vgg19", download=download)
    return path


def load_features_weights(features: nn.Sequential, path: Path) -> nn.Sequential:
    """Copy a VGG checkpoint's convolution weights into ``features``. In place.

    Accepts a full model state dict (``features.0.weight``, ..., ``classifier.*``, as torchvision
    publishes) or a features-only one (``features.0.weight`` or ``0.weight``); other keys are
    ignored. ``features`` may be a truncated stack (a prefix of VGG-19's): then only its layers
    must be in the file, e.g. ``features.0`` to ``features.28`` for the default layers.
    The file is hash-checked when its name carries a hash (``-dcbb9e9d.pth``).

    Raises:
        WeightsError: unreadable file, hash mismatch, or missing / mis-shaped ``features`` keys
            (naming the file and the first offending keys).
    """
    from cnnkit.models.weights import hash_prefix_of, read_state_dict, verify_hash

    prefix = hash_prefix_of(path.name)
    if prefix is not None:
        verify_hash(path, prefix)
    state = read_state_dict(path)
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    own = features.state_dict()
    missing = [k for k in own if k not in state]
    bad = [
        f"features.{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or bad:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f"features.{k}" for k in missing[:4]))
        if bad:
            parts.append("shape mismatch " + ", ".join(bad[:2]))
        raise WeightsError(
            "checkpoint does not fit VGG-19's features: " + "; ".join(parts),
            path=path,
            hint=f"give torchvision's {VGG19_FILE} or a VGG-19 state dict saved from cnnkit.models",
        )
    features.load_state_dict({k: state[k] for k in own})
    return features


def build_extractor(
    layers: Sequence[str],
    content: torch.Tensor | Sequence[torch.Tensor] | None = None,
    backbone: str = "auto",
    weights: str | Path | None = None,
    download: bool = False,
    pooling: str | None = None,
    seed: int = RANDOM_SEED,
    per_channel: bool = True,
    channels_last: bool = False,
) -> Backbone:
    """Build the frozen, truncated feature extractor for ``layers``.

    Args:
        layers: layer names the losses need (content and style).
        content: the content image ``(1, 3, H, W)`` in [0, 1] (or a list of images) on which
            ``random-vgg19`` normalises its layers; required for that backbone.
        backbone: ``auto`` (ImageNet VGG-19 if its weights are found, else ``random-vgg19``),
            ``vgg19`` (ImageNet weights required) or ``random-vgg19``.
        weights: an explicit VGG-19 checkpoint (full torchvision state dict, or only the
            ``features.*`` tensors).
        download: allow downloading the ImageNet weights into the torch hub cache.
        pooling: ``max`` (default; for the random backbone chosen by bench/style_losses.py) or
            ``avg``.
        seed: the random backbone's seed.
        per_channel: random backbone: normalise each channel (True) or each layer (False).

    Raises:
        NotFoundError: unknown backbone or layer name.
        WeightsError: ``vgg19`` asked for but no (valid) weights file.
    """
    if backbone not in BACKBONES:
        raise NotFoundError(
            f"unknown backbone {shorten(backbone, PATH_LIMIT)}",
            hint=f"choose from {', '.join(BACKBONES)}",
        )
    if backbone == "random-vgg19" and weights is not None:
        log.info("--weights is ignored with --backbone random-vgg19")
    path: Path | None = None
    if backbone == "vgg19" or (backbone == "auto" and weights is not None):
        path = find_weights(weights, download)
    elif backbone == "auto":
        try:
            path = find_weights(None, download)
        except WeightsError:
            path = None  # expected offline: fall back to the random backbone
    if path is not None:
        extractor = FeatureExtractor(
            _vgg_features("vgg19"), layers, IMAGENET_MEAN, IMAGENET_STD, pooling or "max"
        )
        extractor.channels_last = channels_last
        load_features_weights(extractor.body, path)  # only the kept layers are needed
        return Backbone(extractor, "vgg19", str(path))
    log.info(weights_notice())
    if content is None:
        raise ValueError("the random-vgg19 backbone needs the content image to normalise on")
    extractor = FeatureExtractor(
        _vgg_features("vgg19"), layers, IMAGENET_MEAN, IMAGENET_STD, pooling or "max", channels_last
    )
    # only the kept layers are drawn; conv k gets the same weights whatever the truncation
    randomize_(extractor.body, seed)
    normalize_unit_variance_(extractor, content, per_channel=per_channel)
    return Backbone(extractor, "random-vgg19", f"seed {seed}")
