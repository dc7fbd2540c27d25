"""Several processes: ``torchrun --nproc_per_node N -m cnnkit train ...``.

torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; when
``WORLD_SIZE > 1`` we join the process group (gloo on CPU, nccl on GPU), give each process its
share of the data (``DistributedSampler``) and wrap the model in ``DistributedDataParallel``.
Only rank 0 prints and writes checkpoints.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import CnnkitError, shorten

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``; ``device``: a torch device string."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``cpu``, ``cuda`` or ``auto`` (cuda when available) -> a torch device string."""
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise CnnkitError(f"--device must be cpu, cuda or auto, got {shorten(device)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise CnnkitError(
                "--device cuda but no CUDA device is available", hint="use --device cpu"
            )
        return f"cuda:{local_rank % max(torch.cuda.device_count(), 1)}"
    return "cpu"


def setup(device: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE > 1``), else stay single."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistContext(device=dev)
    import torch
    import torch.distributed as dist

    backend = "nccl" if dev.startswith("cuda") else "gloo"
    if dev.startswith("cuda"):
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.debug("rank %d/%d joined (%s on %s)", rank, world_size, backend, dev)
    return DistContext(rank, world_size, local_rank, dev, backend)


def teardown(ctx: DistContext, *, together: bool = True) -> None:
    """Leave the process group (if we joined one); ``together``: all processes at once.

    The barrier first: a process that exits while a peer still reads from its gloo connection
    makes that peer abort ("Connection closed by peer", SIGABRT); rank 0 writes the checkpoint
    after the epoch's last collective, so without it the ranks leave at different times. After
    an error (``together=False``) there is no barrier: the peers may be in another collective.
    """
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def all_reduce_sums(ctx: DistContext, values: list[float]) -> list[float]:
    """Sum ``values`` over all processes (identity when single)."""
    if not ctx.enabled:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.tolist()]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def wrap_model(ctx: DistContext, model: Any) -> Any:
    """``DistributedDataParallel(model)`` when distributed, else ``model`` unchanged."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if ctx.device.startswith("cuda"):
        return DistributedDataParallel(model, device_ids=[int(ctx.device.split(":")[1])])
    return DistributedDataParallel(model)
