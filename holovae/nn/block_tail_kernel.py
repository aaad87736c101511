"""C kernel for the elementwise passes of a fused CG block's tail (``csrc/block_tail.c``).

After the per-degree linear, :mod:`holovae.nn.block_tail` scales the stacked output
``H [D, B, C]`` by the signal norm's factor ``w[d] * s[b]``, adds the bias on row 0 and the
skip; backward it needs the per-(row, sample) dot products ``<g, H>`` and ``g * factor``.
Torch does these as a broadcast multiply, an in-place add, a multiply-and-sum and a second
multiply (five full-size passes, two temporaries); the kernel does one pass each way. Built and
cached like the other kernels (:mod:`holovae.native`); ``HOLOVAE_NO_FUSED=1`` turns it off and
the torch path runs.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import torch

from . import buffer_pool
from .stacked_kernel import StackedKernel

__all__ = ["runs", "scale_bias_skip", "grads"]

_ABI_VERSION = 1


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for sfx in ("f32", "f64"):
        f = getattr(lib, f"holovae_tail_forward_{sfx}")
        # H, D, B, C, w, s, shift0, skip, skip_C, skip_d, skip_c, out, threads
        f.restype, f.argtypes = c_int, [p, i64, i64, i64, p, p, p, p, i64, i64, i64, p, c_int]
        f = getattr(lib, f"holovae_tail_backward_{sfx}")
        # g, H, D, B, C, w, s, dH, dfac, threads
        f.restype, f.argtypes = c_int, [p, p, i64, i64, i64, p, p, p, p, c_int]


_native = StackedKernel("block_tail", _ABI_VERSION, _declare, "block-tail kernel", "holovae_tail")


def runs(H: torch.Tensor) -> bool:
    """Whether ``H`` (``[D, B, C]``) goes through the kernel: CPU float32/float64, and it built."""
    return _native.runs(H)


_fn, _check = _native.entry, _native.check


def scale_bias_skip(H: torch.Tensor, w_rows: torch.Tensor, s: torch.Tensor, shift0: Optional[torch.Tensor],
                    skip: Optional[torch.Tensor], shared: Optional[tuple[int, int]]) -> torch.Tensor:
    """``H [D, B, C] * w_rows[d] * s[b]`` (+ ``shift0 [C]`` on row 0) (+ ``skip [D_s, B, C_s]`` on
    its first ``shared = (rows, channels)``) -> a new ``[D, B, C]``."""
    H = H.contiguous()
    D, B, C = H.shape
    w_rows, s = w_rows.to(H.dtype).contiguous(), s.to(H.dtype).contiguous()
    shift0 = None if shift0 is None else shift0.to(H.dtype).contiguous()
    if skip is not None:
        skip = skip.to(H.dtype).contiguous()
        if skip.dim() != 3 or skip.shape[1] != B:
            raise ValueError(f"block-tail kernel: skip {tuple(skip.shape)} for an output {tuple(H.shape)}")
    out = buffer_pool.take((D, B, C), H.dtype)
    _check(_fn("forward", H.dtype)(H.data_ptr(), D, B, C, w_rows.data_ptr(), s.data_ptr(),
                                   None if shift0 is None else shift0.data_ptr(),
                                   None if skip is None else skip.data_ptr(), 1 if skip is None else skip.shape[2],
                                   0 if skip is None else shared[0], 0 if skip is None else shared[1],
                                   out.data_ptr(), torch.get_num_threads()), "scale_bias_skip")
    return out


def grads(g: torch.Tensor, H: torch.Tensor, w_rows: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``g, H [D, B, C]`` -> (``dH = g * w_rows[d] * s[b]``, ``dfactor [D, B] = sum_c g * H``)."""
    g, H = g.contiguous(), H.contiguous()
    D, B, C = H.shape
    if tuple(g.shape) != (D, B, C) or g.dtype != H.dtype:
        raise ValueError(f"block-tail kernel: gradient {tuple(g.shape)} {g.dtype} for {tuple(H.shape)} {H.dtype}")
    w_rows, s = w_rows.to(H.dtype).contiguous(), s.to(H.dtype).contiguous()
    dH = buffer_pool.take((D, B, C), H.dtype)
    dfactor = H.new_empty(D, B)
    _check(_fn("backward", H.dtype)(g.data_ptr(), H.data_ptr(), D, B, C, w_rows.data_ptr(), s.data_ptr(),
                                    dH.data_ptr(), dfactor.data_ptr(), torch.get_num_threads()), "grads")
    return dH, dfactor
