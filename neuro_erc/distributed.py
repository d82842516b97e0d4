"""Data-parallel training over processes launched by ``torchrun`` (torch.distributed + DDP).

``torchrun --nproc_per_node N -m neuro_erc.cli train ...`` starts N copies of the command
with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set; each joins one process group (``gloo`` on
CPU, ``nccl`` on CUDA, one GPU per local rank) and trains on its share of every batch
(:func:`neuro_erc.data.batching.iterate_shards`). Rank 0 alone evaluates on dev and writes
the run directory; what the others need from it (the dev score that drives selection and
early stopping) is broadcast. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper
here is a no-op and training runs in this process as before.

If one process fails, it exits non-zero and torchrun's agent stops the others, so a crash
ends the job with that process's error instead of a hang.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .errors import ConfigError
from .run_config import resolve_device

# How long a collective waits for a slower process: an epoch of one process may take this
# long before the others' next all-reduce gives up (torch's default is 30 min).
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class Processes:
    """Where this process stands among those training together."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def join(device_name: str) -> tuple[Processes, torch.device]:
    """Join torchrun's process group (if launched by it); this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return Processes(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible; "
                              "use --nproc_per_node at most the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return Processes(rank, world), device


def leave(procs: Processes) -> None:
    if procs.active and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, procs: Processes, device: torch.device) -> torch.nn.Module:
    """The module to train: DDP around ``model`` across processes, ``model`` itself alone."""
    if not procs.active:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def from_main(procs: Processes, value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not procs.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(procs: Processes, value: Any) -> list:
    """Every rank's ``value``, in rank order, on every rank."""
    if not procs.active:
        return [value]
    out = [None] * procs.world
    dist.all_gather_object(out, value)
    return out


def barrier(procs: Processes) -> None:
    if procs.active:
        dist.barrier()
