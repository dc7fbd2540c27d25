"""The training loop shared by both engines.

``train(cfg)`` prepares data and model, then runs epochs of minibatch gradient descent on the
softmax cross-entropy J = -(1/m) sum_i log softmax(z_i)[y_i], with a progress bar (loss, accuracy,
images/s), a validation pass, and an atomic checkpoint after every epoch. Ctrl-C saves a
checkpoint (the epochs completed, with the weights as they are) and returns cleanly.

An engine is a :class:`Trainer`: the torch engine here, the NumPy engine in
:mod:`cnnkit.train.numpy_engine`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cnnkit.errors import CnnkitError, WeightsError
from cnnkit.progress import progress
from cnnkit.train import distributed as dist_util
from cnnkit.train.build import (
    create,
    default_image_size,
    input_channels,
    load_start_weights,
    registry_channels,
)
from cnnkit.train.checkpoint import load_checkpoint, save_checkpoint
from cnnkit.train.config import TrainConfig, learning_rate
from cnnkit.train.data import DataBundle, load_data, random_shift

log = logging.getLogger(__name__)

#: ``callback(event, info)``: events "batch_end" {epoch, step, loss} and "epoch_end" {metrics}.
Callback = Callable[[str, dict[str, Any]], None]


class Trainer(Protocol):
    """What the loop needs from an engine."""

    def batches(self, epoch: int) -> tuple[Iterable[tuple[Any, Any]], int]:
        """This epoch's (x, y) minibatches of this process, and how many there are."""
        ...

    def set_lr(self, lr: float) -> None: ...

    def step(self, x: Any, y: Any) -> tuple[float, int, int]:
        """One gradient step; returns (summed loss, correct, count) for the batch."""
        ...

    def evaluate(self, dataset: Any) -> tuple[float, float]:
        """(mean loss, accuracy) over ``dataset`` without updating anything."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Model parameters as torch tensors, keyed like the torch model's ``state_dict``."""
        ...

    def optimizer_state(self) -> dict[str, Any]: ...

    def load_optimizer_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    """What a run produced."""

    history: list[dict[str, float]]  # one dict per epoch: epoch, lr, loss, acc, val_loss, val_acc
    classes: list[str]
    checkpoint: Path | None
    interrupted: bool = False
    epochs_done: int = 0
    model: Any = None  # the trained torch model (for the numpy engine: weights copied into it)
    is_main: bool = True  # False on torchrun ranks other than 0 (they print nothing)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}


# --------------------------------------------------------------------------- torch engine


def make_torch_optimizer(cfg: TrainConfig, params: Any) -> Any:
    import torch

    wd = cfg.weight_decay or 0.0
    lr = float(cfg.lr or 1e-3)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


class TorchTrainer:
    """The PyTorch engine: DataLoader (DistributedSampler under torchrun), optional DDP."""

    def __init__(self, model: Any, cfg: TrainConfig, data: DataBundle, ctx: dist_util.DistContext):
        import torch

        self.cfg = cfg
        self.data = data
        self.ctx = ctx
        self.device = torch.device(ctx.device)
        self.model = model.to(self.device)
        self.net = dist_util.wrap_model(ctx, self.model)
        self.optimizer = make_torch_optimizer(cfg, self.model.parameters())
        self.loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
        self.rng = np.random.default_rng(cfg.seed)

    def _reseed(self, epoch: int) -> None:
        # Augmentation draws depend on (seed, epoch, rank) only, so a resumed run repeats them.
        self.rng = np.random.default_rng([self.cfg.seed, epoch, self.ctx.rank])

    def _loader(self, dataset: Any, epoch: int, shuffle: bool) -> Any:
        import torch
        from torch.utils.data import DataLoader, DistributedSampler

        bs = int(self.cfg.batch_size or 32)
        # A batch of one breaks batch norm in training; drop a lone last sample.
        drop_last = shuffle and len(dataset) % bs == 1 and len(dataset) > 1
        kw: dict[str, Any] = {"batch_size": bs, "num_workers": self.cfg.workers}
        if shuffle and self.ctx.enabled:
            sampler: Any = DistributedSampler(
                dataset, self.ctx.world_size, self.ctx.rank, shuffle=True, seed=self.cfg.seed
            )
            sampler.set_epoch(epoch)
            return DataLoader(dataset, sampler=sampler, drop_last=drop_last, **kw)
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        return DataLoader(dataset, shuffle=shuffle, generator=gen, drop_last=drop_last, **kw)

    def batches(self, epoch: int) -> tuple[Iterable[tuple[Any, Any]], int]:
        loader = self._loader(self.data.train, epoch, shuffle=True)
        self._reseed(epoch)
        return loader, len(loader)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, x: Any, y: Any) -> tuple[float, int, int]:
        import torch

        if self.cfg.augment:
            x = torch.from_numpy(random_shift(x.numpy(), self.cfg.augment, self.rng))
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        self.net.train()
        logits = self.net(x)  # (m, n_classes)
        loss_sum = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_sum / len(y)).backward()
        self.optimizer.step()
        correct = int((logits.argmax(1) == y).sum())
        return float(loss_sum.detach()), correct, len(y)

    def evaluate(self, dataset: Any) -> tuple[float, float]:
        import torch

        self.model.eval()
        total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for x, y in self._loader(dataset, 0, shuffle=False):
                x, y = x.to(self.device), y.to(self.device)
                logits = self.model(x)
                total += float(self.loss_fn(logits, y))
                correct += int((logits.argmax(1) == y).sum())
                n += len(y)
        return total / max(n, 1), correct / max(n, 1)

    def state_dict(self) -> dict[str, Any]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def optimizer_state(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        if state.get("engine") == "numpy":
            log.warning("optimizer state is from the NumPy engine; starting it afresh")
            return
        try:
            self.optimizer.load_state_dict(state)
        except (ValueError, KeyError):
            log.warning("optimizer state does not fit this optimizer; starting it afresh")


# --------------------------------------------------------------------------- the loop


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _config_record(cfg: TrainConfig) -> dict[str, Any]:
    """The config as plain values (safe for ``weights_only`` loading)."""
    return {k: v for k, v in asdict(cfg).items() if isinstance(v, (int, float, str, bool, dict))}


def prepare(cfg: TrainConfig, ctx: dist_util.DistContext | None = None) -> tuple[Any, DataBundle]:
    """Build the torch model (seeded) and the data for ``cfg`` (already resolved)."""
    _seed_everything(cfg.seed)
    # The class count is known only after reading the data, the channels before: from the
    # registry's input size (or in_channels=), else from a small 2-class probe of the model.
    channels = cfg.model_kwargs.get("in_channels") or registry_channels(cfg.model)
    if channels is None:
        channels = input_channels(create(cfg.model, 2, **cfg.model_kwargs))
    image_size = cfg.image_size or default_image_size(cfg.model)
    data = load_data(
        data=cfg.data,
        dataset=cfg.dataset,
        image_size=image_size,
        channels=channels,
        val_split=cfg.val_split,
        seed=cfg.seed,
    )
    _seed_everything(cfg.seed)
    model = create(cfg.model, len(data.classes), **cfg.model_kwargs)
    return model, data


class _SilentBar:
    """Stands in for the progress bar on ranks other than 0."""

    def __init__(self, batches: Iterable[Any]):
        self.batches = batches

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None


def _bar(ctx: dist_util.DistContext, batches: Iterable[Any], total: int, desc: str) -> Any:
    if not ctx.is_main:
        return _SilentBar(batches)
    return progress(batches, total=total, desc=desc, unit="batch")


def train(cfg: TrainConfig, callback: Callback | None = None) -> TrainResult:
    """Run ``cfg`` (defaults filled in); return the history and where the checkpoint went.

    Raises:
        CnnkitError: bad options or data; WeightsError for a checkpoint that does not fit.
    """
    cfg = cfg.resolved()
    ctx = dist_util.setup("cpu" if cfg.engine == "numpy" else cfg.device)
    try:
        result = _train(cfg, ctx, callback)
    except BaseException:
        dist_util.teardown(ctx, together=False)
        raise
    dist_util.teardown(ctx)
    return result


def _train(cfg: TrainConfig, ctx: dist_util.DistContext, callback: Callback | None) -> TrainResult:
    model, data = prepare(cfg, ctx)
    if cfg.weights:
        load_start_weights(model, cfg.model, cfg.weights, cfg.model_kwargs)

    start_epoch, history = 0, []
    resume_ckpt = None
    if cfg.resume:
        assert cfg.out is not None
        resume_ckpt = load_checkpoint(cfg.out)
        _check_resumable(resume_ckpt, cfg, data, Path(cfg.out))
        model.load_state_dict(resume_ckpt["state_dict"])
        start_epoch = int(resume_ckpt["epoch"])
        history = list(resume_ckpt.get("history", []))

    trainer: Trainer
    if cfg.engine == "numpy":
        if ctx.enabled:
            raise CnnkitError("--engine numpy runs in one process; launch it without torchrun")
        from cnnkit.train.numpy_engine import NumpyTrainer

        trainer = NumpyTrainer(model, cfg, data)
    else:
        trainer = TorchTrainer(model, cfg, data, ctx)
    if resume_ckpt is not None and resume_ckpt.get("optimizer_state"):
        trainer.load_optimizer_state(resume_ckpt["optimizer_state"])

    assert cfg.epochs is not None
    out = Path(cfg.out) if cfg.out else None
    n_train = len(data.train)
    if ctx.is_main:
        log.info(
            "training %s (%s engine, %s) on %s: %d train / %d val images, %d classes, %d epochs",
            cfg.model, cfg.engine, ctx.device, data.source, n_train,
            len(data.val) if data.val is not None else 0, len(data.classes), cfg.epochs,
        )  # fmt: skip
        if start_epoch >= cfg.epochs:
            log.info("%s already has %d epochs; nothing to do (raise --epochs)", out, start_epoch)

    def checkpoint(epochs_done: int, interrupted: bool) -> Path | None:
        if out is None or not ctx.is_main:
            return None
        return save_checkpoint(
            out,
            {
                "model": cfg.model,
                "model_kwargs": dict(cfg.model_kwargs),
                "num_classes": len(data.classes),
                "classes": list(data.classes),
                "state_dict": trainer.state_dict(),
                "optimizer": cfg.optimizer,
                "optimizer_state": trainer.optimizer_state(),
                "epoch": epochs_done,
                "history": history,
                "image_size": data.image_size,
                "in_channels": data.channels,
                "mean": list(data.mean),
                "std": list(data.std),
                "dataset": cfg.dataset or "",
                "engine": cfg.engine,
                "config": _config_record(cfg),
                "interrupted": interrupted,
            },
        )

    epoch = start_epoch
    saved: Path | None = out if (cfg.resume and out is not None) else None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            lr = learning_rate(cfg, epoch)
            trainer.set_lr(lr)
            batches, n_batches = trainer.batches(epoch)
            bar = _bar(ctx, batches, n_batches, f"epoch {epoch + 1}/{cfg.epochs}")
            loss_sum, correct, seen = 0.0, 0, 0
            start = time.perf_counter()
            for step, (x, y) in enumerate(bar):
                b_loss, b_correct, b_n = trainer.step(x, y)
                loss_sum += b_loss
                correct += b_correct
                seen += b_n
                rate = seen / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(  # shown at the bar's next refresh, not once per batch
                    loss=f"{loss_sum / seen:.4f}",
                    acc=f"{correct / seen:.3f}",
                    img_s=f"{rate:.0f}",
                    refresh=False,
                )
                if callback is not None:
                    callback("batch_end", {"epoch": epoch, "step": step, "loss": b_loss / b_n})
            bar.close()
            seconds = time.perf_counter() - start
            tot_loss, tot_correct, tot_seen = dist_util.all_reduce_sums(
                ctx, [loss_sum, float(correct), float(seen)]
            )
            metrics: dict[str, float] = {
                "epoch": epoch + 1,
                "lr": lr,
                "loss": tot_loss / max(tot_seen, 1),
                "acc": tot_correct / max(tot_seen, 1),
                "images": tot_seen,
                "seconds": seconds,
                "images_per_s": tot_seen / max(seconds, 1e-9),
            }
            if data.val is not None and len(data.val) and ctx.is_main:
                metrics["val_loss"], metrics["val_acc"] = trainer.evaluate(data.val)
            dist_util.barrier(ctx)
            history.append(metrics)
            saved = checkpoint(epoch + 1, False) or saved
            if ctx.is_main:
                log.info(_format_epoch(metrics, cfg.epochs, saved))
            if callback is not None:
                callback("epoch_end", {"metrics": metrics})
        epochs_done = max(cfg.epochs, start_epoch)
        interrupted = False
    except KeyboardInterrupt:
        epochs_done = epoch  # the interrupted epoch is not counted; its weights are kept
        interrupted = True
        saved = checkpoint(epochs_done, True) or saved
        if ctx.is_main:
            where = f"; saved {saved} (continue with --resume)" if saved else ""
            log.warning(
                "interrupted during epoch %d after %d complete epoch(s)%s", epoch + 1, epoch, where
            )

    final_model = model
    if cfg.engine == "numpy":
        model.load_state_dict(trainer.state_dict())
    return TrainResult(
        history, list(data.classes), saved, interrupted, epochs_done, final_model, ctx.is_main
    )


def _format_epoch(m: dict[str, float], epochs: int, saved: Path | None) -> str:
    text = (
        f"epoch {int(m['epoch'])}/{epochs}  loss {m['loss']:.4f}  acc {m['acc']:.2%}  "
        f"{m['images_per_s']:.0f} img/s"
    )
    if "val_acc" in m:
        text += f"  val_loss {m['val_loss']:.4f}  val_acc {m['val_acc']:.2%}"
    if saved is not None:
        text += f"  -> {saved}"
    return text


def _check_resumable(ckpt: dict[str, Any], cfg: TrainConfig, data: DataBundle, path: Path) -> None:
    if ckpt.get("model") != cfg.model:
        raise WeightsError(
            f"checkpoint is for model {ckpt.get('model')!r}, not {cfg.model!r}",
            path=path,
            hint=f"resume with `cnnkit train {ckpt.get('model')} ...` or choose another --out",
        )
    if list(ckpt.get("classes", [])) != list(data.classes):
        raise WeightsError(
            "checkpoint classes differ from the data's",
            path=path,
            hint="resume on the same data, or start anew with --weights",
        )
