"""Reusable CPU output buffers for the CG block's hot path.

A training step allocates the same big intermediate tensors every step (the CG kernel's
outputs and input gradients, the gradients of those outputs). glibc maps big allocations
fresh, and the first write to every 4 KiB page of a fresh mapping is a page fault: measured
on the L = 10 forward, 3.8 ms into a reused buffer against 6.4 ms into a fresh one, and the
protein block's largest gradient matmul runs at 40 GFLOP/s into a fresh output against 53
into a reused one.

:func:`take` hands out a buffer again only when its reference count
(``torch._C._storage_Use_Count``: every tensor, view and autograd-saved tensor on it counts)
is down to the pool's own reference, so a buffer still in use is never reused. The contents of
a buffer it returns are undefined: callers overwrite it entirely. Free buffers beyond
``HOLOVAE_POOL_MB`` (default 1024) are dropped, least recently used first;
``HOLOVAE_NO_POOL=1`` (read on every call), or a torch without that count, turns it off.
"""
from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
from typing import Sequence

import torch

__all__ = ["take", "take_split", "clear", "held_storages"]

_HUGE_MIN_BYTES = 8 << 20   # fresh buffers this big get madvise(MADV_HUGEPAGE)
_HUGE = 2 << 20
_MADV_HUGEPAGE = 14         # linux/mman.h


def _libc_madvise():
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_madvise = _libc_madvise() if sys.platform.startswith("linux") else None


def fresh(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """A new CPU tensor; a big one gets transparent huge pages on its 2 MiB-aligned interior
    (a hint: its first-touch page faults, taken by a kernel's threads at once, otherwise cost
    more than the kernel and stop it scaling)."""
    t = torch.empty(shape, dtype=dtype)
    nbytes = t.numel() * t.element_size()
    if nbytes >= _HUGE_MIN_BYTES and _madvise is not None:
        start = (t.data_ptr() + _HUGE - 1) & ~(_HUGE - 1)
        end = (t.data_ptr() + nbytes) & ~(_HUGE - 1)
        if end > start:
            _madvise(start, end - start, _MADV_HUGEPAGE)
    return t


def _disabled() -> bool:
    return os.environ.get("HOLOVAE_NO_POOL", "").strip().lower() not in ("", "0", "false", "no")


class BufferPool:
    """Free CPU buffers by (numel, dtype); see the module docstring."""

    def __init__(self):
        self._lock = threading.Lock()
        self._slots: dict = {}        # (numel, dtype) -> [storage, ...]; insertion order = age
        self._count = getattr(torch._C, "_storage_Use_Count", None)

    def take(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        """A contiguous CPU tensor of ``shape``, contents undefined."""
        shape = tuple(int(n) for n in shape)
        return self._take_flat(math.prod(shape), dtype).view(shape)

    def take_split(self, shapes: Sequence[tuple], dtype: torch.dtype) -> list[torch.Tensor]:
        """Contiguous tensors of ``shapes`` laid end to end in one buffer (one pool lookup for
        all of them; the buffer returns to the pool when every one of them is gone)."""
        shapes = [tuple(int(n) for n in s) for s in shapes]
        sizes = [math.prod(s) for s in shapes]
        flat = self._take_flat(sum(sizes), dtype)
        return [part.view(s) for part, s in zip(flat.split(sizes), shapes)]

    def _take_flat(self, numel: int, dtype: torch.dtype) -> torch.Tensor:
        if self._count is None or _disabled():
            return fresh((numel,), dtype)
        key = (numel, dtype)
        with self._lock:
            slots = self._slots.pop(key, [])
            self._slots[key] = slots                              # most recently used last
            for st in slots:
                if self._count(st._cdata) == 1:                   # only the pool refers to it
                    return torch.empty(0, dtype=dtype).set_(st, 0, (numel,))
            t = fresh((numel,), dtype)
            if len(slots) < 64:
                slots.append(t.untyped_storage())
                self._trim()
            return t

    def _trim(self) -> None:
        budget = int(float(os.environ.get("HOLOVAE_POOL_MB", "1024")) * (1 << 20))
        total = sum(st.nbytes() for slots in self._slots.values() for st in slots)
        for slots in list(self._slots.values()):                  # oldest keys first
            for st in list(slots):
                if total <= budget:
                    return
                if self._count(st._cdata) == 1:
                    slots.remove(st)
                    total -= st.nbytes()

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()

    def held_storages(self) -> list:
        with self._lock:
            return [st for slots in self._slots.values() for st in slots]


_pool = BufferPool()
take = _pool.take
take_split = _pool.take_split
clear = _pool.clear
held_storages = _pool.held_storages
