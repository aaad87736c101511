"""A small C kernel over stacked features ``[D, B, C]`` (the batch norm's and the block tail's
passes): :class:`holovae.native.NativeLibrary` plus what both need, the test of whether a
tensor goes through the kernel, the float32/float64 entry point by name, and the error for a
refused call."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from ..native import NativeLibrary


class StackedKernel(NativeLibrary):
    """``csrc/{name}.c``, whose entry points are ``{prefix}_{entry}_f32`` and ``..._f64`` and
    return 0, or -3 for bad arguments, and whose ABI version is ``{prefix}_abi_version()``."""

    def __init__(self, name: str, abi_version: int, declare: Callable, what: str, prefix: str):
        super().__init__(name, Path(__file__).resolve().parent / "csrc" / f"{name}.c", abi_version,
                         f"{prefix}_abi_version", declare, what)
        self.prefix = prefix

    def runs(self, X: torch.Tensor) -> bool:
        """Whether ``X`` (``[D, B, C]``) goes through the kernel: CPU float32/float64, and it built."""
        return X.device.type == "cpu" and X.dtype in (torch.float32, torch.float64) and X.dim() == 3 \
            and self.available()

    def entry(self, name: str, dtype: torch.dtype):
        return getattr(self.get(), f"{self.prefix}_{name}_{'f32' if dtype == torch.float32 else 'f64'}")

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            raise ValueError(f"{self.what}: invalid arguments to {what} (returned {rc})")
