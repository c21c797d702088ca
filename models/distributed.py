"""torch.distributed helpers: Beacon trains on one process, or under ``torchrun`` (DDP).

The entry point calls :func:`init` (which reads torchrun's environment through
``init_process_group``'s ``env://`` method); the training loop only asks :func:`rank` and
:func:`world_size` and uses the collective helpers, which are no-ops on one process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init(device_type: str = "auto") -> bool:
    """Initialise the process group under torchrun (NCCL on CUDA, Gloo on CPU).

    Returns True when this process is part of a multi-process group. Call once, from the
    entry point, before training; a process not started by torchrun stays single.
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return is_distributed()
    use_cuda = device_type in ("auto", "cuda") and torch.cuda.is_available()
    try:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    except ValueError:  # no MASTER_ADDR/RANK/WORLD_SIZE: not launched by torchrun
        return False
    if use_cuda:
        torch.cuda.set_device(dist.get_rank() % torch.cuda.device_count())
    return is_distributed()


def local_device(device: torch.device) -> torch.device:
    """This rank's CUDA device when training on CUDA under DDP; ``device`` otherwise."""
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Mean of ``value`` over ranks."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on at least one (e.g. out of time)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(items: list[Any]) -> list[list[Any]]:
    """Every rank's ``items`` (picklable), in rank order; ``[items]`` on one process."""
    if not is_distributed():
        return [items]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, items)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()
