"""Triplet-loss training (or fine-tuning) of the face encoder f on a folder of persons.

``data/<person>/<photo>``: one subfolder per person. Each photo is detected and aligned once to a
150x150 chip (the largest face; photos without a face are skipped), unless the photos already
are chips (``aligned=True``). Each step samples P persons x K photos, computes f(x) for the batch
(B = P*K, x: (B, 3, 150, 150)), mines triplets inside it (semi-hard or batch-hard) and takes an
SGD (momentum 0.9) or Adam step, on the units after the first ``freeze``, of

    J = (1/m) sum_i max(||f(A(i)) - f(P(i))||^2 - ||f(A(i)) - f(N(i))||^2 + alpha, 0).

After every epoch the checkpoint ``{"state_dict", "model_id", "arch": "dlib_resnet_v1", "epoch",
"optimizer", ...}`` is written atomically to ``out``; ``resume`` continues from it. The file loads
with ``FaceEncoder.load(out)`` and so works with ``--model`` in every ``cnnkit face`` command.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.errors import CnnkitError, WeightsError
from cnnkit.face.losses import MINING, mined_triplet_loss

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Options of :func:`train_encoder` (and of ``cnnkit face train``)."""

    data: Path  # folder with one subfolder of photos per person
    out: Path  # checkpoint file written after every epoch
    init: str = "dlib"  # "dlib" (fine-tune dlib's weights), "scratch", or a model file
    margin: float = 0.2  # alpha of the triplet loss
    epochs: int = 5
    mining: str = "semi-hard"  # or "batch-hard"
    lr: float | None = None  # None: see default_lr()
    optimizer: str = "sgd"  # "sgd" (momentum 0.9, as dlib trained it) or "adam"
    freeze: int = 0  # keep the stem and the first `freeze` residual units fixed (0..14)
    persons_per_batch: int = 8  # P
    photos_per_person: int = 4  # K
    steps_per_epoch: int | None = None  # None: about (number of photos) / (P * K), at least 1
    upsample: int = 1  # HOG upsampling when detecting faces in the photos
    aligned: bool = False  # photos already are 150x150 chips: no detection
    augment: bool = True  # random horizontal flip and brightness jitter
    resume: bool = False  # continue from ``out`` if it exists
    device: str = "cpu"
    seed: int = 0


@dataclass
class FaceSet:
    """Aligned chips of a folder of persons."""

    chips: np.ndarray  # (N, 150, 150, 3) uint8
    labels: np.ndarray  # (N,) person index
    names: list[str]
    skipped: list[str] = field(default_factory=list)  # photos without a usable face


def load_face_folder(
    data: str | Path, upsample: int = 1, aligned: bool = False, encoder_chip: int = 150
) -> FaceSet:
    """Chips and labels of ``data/<person>/<photo>``; see the module docstring."""
    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import box_area, detect, load_image
    from cnnkit.io import list_images
    from cnnkit.progress import progress

    root = Path(data)
    if not root.is_dir():
        raise CnnkitError(
            "no such folder", path=root, hint="give a folder with one subfolder per person"
        )
    persons = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(i, f) for i, p in enumerate(persons) for f in list_images([p])]
    if len(persons) < 2 or not files:
        raise CnnkitError(
            f"found {len(persons)} person folder(s) with {len(files)} photo(s)",
            path=root,
            hint="training needs at least 2 persons, one of them with 2 or more photos",
        )
    chips, labels, skipped = [], [], []
    for label, f in progress(files, desc="aligning", unit="img"):
        try:
            image = load_image(f)
            if aligned:
                if image.shape[:2] != (encoder_chip, encoder_chip):
                    raise CnnkitError(f"not a {encoder_chip}x{encoder_chip} chip", path=f)
                chip = image
            else:
                boxes = detect(image, upsample)
                if not boxes:
                    raise CnnkitError("no face found", path=f)
                box = max(boxes, key=box_area)
                chip = align_faces(image, [box])[1][0]
        except CnnkitError as exc:
            log.warning("skipping %s", exc.message)
            skipped.append(str(f))
            continue
        chips.append(chip)
        labels.append(label)
    lab = np.array(labels, dtype=np.int64)
    counts = np.bincount(lab, minlength=len(persons)) if len(lab) else np.zeros(0, int)
    if (counts >= 1).sum() < 2 or (counts >= 2).sum() < 1:
        raise CnnkitError(
            "not enough usable photos: need 2 persons, one with at least 2 photos with a face",
            path=root,
        )
    return FaceSet(np.stack(chips), lab, [p.name for p in persons], skipped)


def _folder_key(root: Path, upsample: int, aligned: bool) -> str:
    """A hash of the photo files (relative path, size, mtime) and the alignment options."""
    from cnnkit.io import list_images

    digest = hashlib.sha256(f"v1 upsample={upsample} aligned={aligned}".encode())
    for f in list_images([root]):
        st = f.stat()
        digest.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cached_face_folder(
    data: str | Path, out: str | Path, upsample: int = 1, aligned: bool = False
) -> FaceSet:
    """:func:`load_face_folder`, cached beside the checkpoint as ``<out>.chips.npz``.

    The cache is used only when the photos (names, sizes, times) and options are unchanged, so
    ``--resume`` after Ctrl-C does not detect and align every photo again.
    """
    from cnnkit.io import atomic_write

    root, cache = Path(data), Path(f"{out}.chips.npz")
    key = _folder_key(root, upsample, aligned) if root.is_dir() else ""
    if key and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    log.info("using the aligned chips cached in %s", cache)
                    return FaceSet(
                        z["chips"],
                        z["labels"],
                        [str(n) for n in z["names"]],
                        [str(n) for n in z["skipped"]],
                    )
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
            log.warning("ignoring the damaged chip cache %s (%s)", cache, exc)
    faceset = load_face_folder(root, upsample, aligned)
    try:
        with atomic_write(cache, "wb") as f:
            np.savez(
                f,
                key=np.array(key),
                chips=faceset.chips,
                labels=faceset.labels,
                names=np.array(faceset.names, dtype=str),
                skipped=np.array(faceset.skipped, dtype=str),
            )
    except OSError as exc:
        log.warning("could not cache the aligned chips at %s (%s)", cache, exc)
    return faceset


def _weights_id(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def _initial_model(init: str):
    from cnnkit.face.encoder import ARCH, DlibFaceResNet, FaceEncoder, converted_dlib_model

    if init == "scratch":
        return DlibFaceResNet(), "scratch"
    if init == "dlib":
        model, model_id = converted_dlib_model()
        return model, model_id
    if not Path(init).is_file():
        raise WeightsError(
            "no such model file", path=init, hint="--init takes dlib, scratch, or a model file"
        )
    enc = FaceEncoder.load(init)
    if not hasattr(enc, "model"):
        raise WeightsError(f"not a trainable {ARCH} model", path=init)
    return enc.model, enc.model_id


def _sample_batch(
    rng: np.random.Generator, by_person: list[np.ndarray], p: int, k: int
) -> np.ndarray:
    """Indices of a P x K batch: P persons (those with >= 2 photos first), K photos each."""
    multi = [i for i, idx in enumerate(by_person) if len(idx) >= 2]
    single = [i for i, idx in enumerate(by_person) if len(idx) == 1]
    chosen = list(rng.choice(multi, size=min(p, len(multi)), replace=False))
    if len(chosen) < 2 and single:  # at least one other person to act as negative
        chosen += list(rng.choice(single, size=min(p - len(chosen), len(single)), replace=False))
    rows: list[int] = []
    for person in chosen:
        idx = by_person[person]
        rows.extend(rng.choice(idx, size=k, replace=len(idx) < k))
    return np.array(rows, dtype=np.int64)


def _to_tensor(chips: np.ndarray, rng: np.random.Generator | None, device) -> torch.Tensor:
    """(B, 150, 150, 3) uint8 -> (B, 3, 150, 150) float pixels in [0, 255], augmented if rng."""
    x = torch.from_numpy(np.ascontiguousarray(chips)).to(device).permute(0, 3, 1, 2).float()
    if rng is not None:
        flip = torch.from_numpy(rng.random(len(x)) < 0.5).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        gain = torch.from_numpy(rng.uniform(0.85, 1.15, size=(len(x), 1, 1, 1))).to(device)
        x = (x * gain.float()).clamp(0, 255)
    return x


def default_lr(cfg: TrainConfig) -> float:
    """Learning rate when none is given: small when fine-tuning dlib's weights (larger steps
    undo what it learned on millions of faces), larger from scratch."""
    if cfg.init == "scratch":
        return 1e-3 if cfg.optimizer == "adam" else 1e-2
    return 1e-6 if cfg.optimizer == "adam" else 1e-4


def trainable_parameters(model, freeze: int) -> list[torch.nn.Parameter]:
    """Parameters after the stem and the first ``freeze`` residual units (those are frozen)."""
    n_units = len(model.blocks)
    if not 0 <= freeze <= n_units:
        raise CnnkitError(f"freeze must be in [0, {n_units}] residual units, got {freeze}")
    for p in model.parameters():
        p.requires_grad_(freeze == 0)
    if freeze:
        for module in [*list(model.blocks)[freeze:], model.fc]:
            for p in module.parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def save_checkpoint(path: Path, model, optimizer, epoch: int, extra: dict) -> str:
    """Write the checkpoint atomically; returns its model_id."""
    from cnnkit.face.encoder import ARCH
    from cnnkit.io import atomic_write

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    model_id = f"{ARCH}-ft:{_weights_id(state)}"
    ckpt = {
        "state_dict": state,
        "model_id": model_id,
        "arch": ARCH,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        **extra,
    }
    with atomic_write(path, "wb") as f:
        torch.save(ckpt, f)
    return model_id


def train_encoder(config: TrainConfig, faceset: FaceSet | None = None) -> list[dict]:
    """Train f with the triplet loss; returns one record per epoch run
    (``epoch``, ``loss``, ``active``: mean fraction of active triplets, ``model_id``)."""
    from cnnkit.progress import progress

    cfg = config
    if cfg.optimizer not in ("sgd", "adam"):
        raise CnnkitError(f"optimizer should be 'sgd' or 'adam'. Got {cfg.optimizer!r}")
    if cfg.mining not in MINING:
        raise CnnkitError(f"mining should be one of {', '.join(MINING)}. Got {cfg.mining!r}")
    if cfg.epochs < 1 or cfg.margin < 0:
        raise CnnkitError("epochs must be >= 1 and margin >= 0")
    out = Path(cfg.out)
    if out.exists() and not cfg.resume:
        raise CnnkitError(
            "exists already", path=out, hint="pass --resume to continue it, or remove it"
        )
    device = torch.device(cfg.device)
    data = faceset or cached_face_folder(cfg.data, out, cfg.upsample, cfg.aligned)
    by_person = [np.flatnonzero(data.labels == i) for i in range(len(data.names))]
    by_person = [idx for idx in by_person if len(idx)]

    start_epoch, history = 0, []
    if cfg.resume and out.exists():
        from cnnkit.face.encoder import load_checkpoint

        model, _ = load_checkpoint(out)
        ckpt = torch.load(out, map_location="cpu", weights_only=True)
        start_epoch = int(ckpt.get("epoch", 0))
        history = list(ckpt.get("history", []))
        base_id = ckpt.get("base_model_id", "unknown")
        log.info("resuming %s after epoch %d", out, start_epoch)
    else:
        if cfg.resume:
            log.warning("nothing to resume at %s: starting from --init %s", out, cfg.init)
        model, base_id = _initial_model(cfg.init)
        ckpt = None
    model = model.to(device).train()
    params = trainable_parameters(model, cfg.freeze)
    lr = cfg.lr if cfg.lr is not None else default_lr(cfg)
    opt_name = cfg.optimizer
    if ckpt is not None and ckpt.get("optimizer_name", opt_name) != opt_name:
        opt_name = str(ckpt["optimizer_name"])
        log.info("resuming with the checkpoint's optimizer, %s", opt_name)
    if opt_name == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    if ckpt is not None and "optimizer" in ckpt:
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, ValueError) as exc:  # another optimizer or --freeze: fresh state
            log.warning("the optimizer state in %s does not fit; starting it afresh (%s)", out, exc)
    batch = cfg.persons_per_batch * cfg.photos_per_person
    steps = cfg.steps_per_epoch or max(1, len(data.labels) // batch)
    if start_epoch >= cfg.epochs:
        log.info("%s already has %d epochs: nothing to do", out, start_epoch)
    run = []
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed + epoch)
        rng = np.random.default_rng(cfg.seed + epoch)
        losses, actives = [], []
        bar = progress(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step")
        for _ in bar:
            rows = _sample_batch(rng, by_person, cfg.persons_per_batch, cfg.photos_per_person)
            x = _to_tensor(data.chips[rows], rng if cfg.augment else None, device)
            labels = torch.from_numpy(data.labels[rows]).to(device)
            emb = model(x)  # (B, 128)
            loss, active, _ = mined_triplet_loss(emb, labels, cfg.margin, cfg.mining)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            actives.append(active)
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", active=f"{np.mean(actives):.2f}")
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "active": float(np.mean(actives)),
        }
        history.append(record)
        extra = {
            "history": history,
            "base_model_id": base_id,
            "optimizer_name": opt_name,
            "config": {k: str(v) for k, v in asdict(cfg).items()},
            "persons": [str(n) for n in data.names],  # plain str: loadable with weights_only
        }
        record["model_id"] = save_checkpoint(out, model, optimizer, epoch + 1, extra)
        log.info(
            "epoch %d: loss %.4f, active triplets %.2f -> %s",
            epoch + 1,
            record["loss"],
            record["active"],
            out,
        )
        run.append(record)
    model.eval()
    return run
