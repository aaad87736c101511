"""Data-parallel training on the GPUs (or CPU processes) of one node, launched by ``torchrun``.

``torchrun --standalone --nproc_per_node=N -m holovae.cli train ...`` starts N processes with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment; :func:`setup` joins them in a
process group (NCCL when training on CUDA, one GPU per process: ``cuda:LOCAL_RANK``; gloo on
the CPU). :func:`holovae.train.train` then wraps the model in ``DistributedDataParallel`` and
:class:`holovae.nn.SO3BatchNorm` synchronises its batch statistics over the group, so N
processes take the same optimisation steps as one process with the same global batch.

Nothing here costs anything when no process group exists: every helper falls back to the
single-process answer (rank 0 of 1).
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import torch

log = logging.getLogger(__name__)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) if launched_by_torchrun() else 1


def is_initialized() -> bool:
    """Whether the default ``torch.distributed`` process group exists."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if is_initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if is_initialized() else 0


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``; the global rank when unset)."""
    return int(os.environ.get("LOCAL_RANK", rank()))


def is_main() -> bool:
    """True on rank 0 (or without a process group): the process that writes files and logs."""
    return rank() == 0


def active() -> bool:
    """A process group of more than one process exists (batch statistics must be synchronised)."""
    return is_initialized() and torch.distributed.get_world_size() > 1


def device_for(name: str, local: Optional[int] = None) -> torch.device:
    """The device of this process for a ``TrainConfig.device`` name: ``"auto"`` and ``"cuda"``
    give ``cuda:LOCAL_RANK`` (``"auto"`` falls back to the CPU without CUDA), ``"cpu"`` the CPU.
    An explicit ``"cuda:K"`` is refused with several processes (they would share one GPU)."""
    local = local_rank() if local is None else local
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        if env_world_size() > 1 or active():
            raise ValueError(f"device {name!r}: with several processes use 'auto' or 'cuda' "
                             "(process LOCAL_RANK gets cuda:LOCAL_RANK)")
        return torch.device(name)
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA device")
    if local >= torch.cuda.device_count():
        raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices: "
                           "start at most one process per GPU (--nproc_per_node)")
    return torch.device("cuda", local)


def setup(device: str = "auto") -> torch.device:
    """Join the torchrun process group (once) and return this process's device.

    NCCL when the device is CUDA, gloo on the CPU. Raises ``RuntimeError`` outside torchrun.
    """
    if not launched_by_torchrun():
        raise RuntimeError("distributed training needs a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK are unset), "
                           "e.g. torchrun --standalone --nproc_per_node=2 -m holovae.cli train ...")
    if not torch.distributed.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    dev = device_for(device)
    if is_initialized():
        return dev
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl", device_id=dev)
    else:
        if not torch.distributed.is_gloo_available():
            raise RuntimeError("CPU distributed training needs the gloo backend, which this torch build lacks")
        torch.distributed.init_process_group(backend="gloo")
    log.debug("rank %d of %d on %s (%s)", rank(), world_size(), dev, torch.distributed.get_backend())
    return dev


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if not is_initialized():
        return
    if torch.distributed.get_backend() == "nccl":
        torch.distributed.barrier(device_ids=[torch.cuda.current_device()])
    else:
        torch.distributed.barrier()


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the processes, in place, without autograd (returned for chaining)."""
    if active():
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over processes: the gradient of every process's input is the sum of
    the gradients of the (identical) outputs on all processes."""

    @staticmethod
    def forward(ctx, t):
        t = t.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(grad, op=torch.distributed.ReduceOp.SUM)
        return grad


def differentiable_all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over the processes, with gradients (see :class:`_AllReduceSum`).

    With ``DistributedDataParallel``, which averages parameter gradients, this is the right
    backward: process r back-propagates ``world * L_r`` so that the average is ``sum_r L_r``.
    """
    return _AllReduceSum.apply(t)
