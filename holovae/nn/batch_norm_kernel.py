"""C kernel for the passes of the stacked SO(3) batch norm (``csrc/batch_norm.c``).

:class:`holovae.nn.norms.SO3BatchNorm`'s stacked form, ``X [D, B, C]``, needs two full-size
passes forward (the per-row sums of squares, then the scaling) and two backward (the per-row
sums of ``g * X``, then ``dX = g * a - X * k``); torch's version of the same algebra writes
several full-size temporaries. Built and cached like the other kernels
(:mod:`holovae.native`); ``HOLOVAE_NO_FUSED=1`` turns it off and the torch path runs.
"""
from __future__ import annotations

import ctypes
from typing import Optional

import torch

from . import buffer_pool
from .stacked_kernel import StackedKernel

__all__ = ["runs", "sq_sums", "scale", "grad_sums", "grad_scale"]

_ABI_VERSION = 1


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for sfx in ("f32", "f64"):
        f = getattr(lib, f"holovae_bn_sq_sums_{sfx}")
        f.restype, f.argtypes = c_int, [p, i64, i64, i64, p, c_int]             # X, D, B, C, S, threads
        f = getattr(lib, f"holovae_bn_apply_{sfx}")
        f.restype, f.argtypes = c_int, [p, i64, i64, i64, p, p, p, c_int]       # X, D, B, C, a, shift0, out
        f = getattr(lib, f"holovae_bn_grad_sums_{sfx}")
        f.restype, f.argtypes = c_int, [p, p, i64, i64, i64, p, p, c_int]       # g, X, D, B, C, G, g0
        f = getattr(lib, f"holovae_bn_grad_apply_{sfx}")
        f.restype, f.argtypes = c_int, [p, p, i64, i64, i64, p, p, p, p, c_int]  # g, X, D, B, C, a, k, corr0, dX


_native = StackedKernel("batch_norm", _ABI_VERSION, _declare, "batch-norm kernel", "holovae_bn")


def runs(X: torch.Tensor) -> bool:
    """Whether ``X`` (``[D, B, C]``) goes through the kernel: CPU float32/float64, and it built."""
    return _native.runs(X)


_fn, _check = _native.entry, _native.check


def _p(t: Optional[torch.Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _small(t: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    return None if t is None else t.detach().to(dtype).contiguous()


def sq_sums(X: torch.Tensor) -> torch.Tensor:
    """``X [D, B, C]`` -> ``[D, C]``: ``sum_b X^2``."""
    X = X.contiguous()
    D, B, C = X.shape
    S = X.new_empty(D, C)
    _check(_fn("sq_sums", X.dtype)(X.data_ptr(), D, B, C, S.data_ptr(), torch.get_num_threads()), "sq_sums")
    return S


def scale(X: torch.Tensor, a: torch.Tensor, shift0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``X [D, B, C] * a [D, C]`` (row ``d`` by ``a[d]``), plus ``shift0 [C]`` on row 0."""
    X = X.contiguous()
    D, B, C = X.shape
    a, shift0 = _small(a, X.dtype), _small(shift0, X.dtype)
    out = buffer_pool.take((D, B, C), X.dtype)
    _check(_fn("apply", X.dtype)(X.data_ptr(), D, B, C, a.data_ptr(), _p(shift0), out.data_ptr(),
                                 torch.get_num_threads()), "scale")
    return out


def grad_sums(g: torch.Tensor, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``g, X [D, B, C]`` -> (``[D, C]``: ``sum_b g X``, ``[C]``: ``sum_b g[0]``)."""
    g, X = g.contiguous(), X.contiguous()
    D, B, C = X.shape
    G, g0 = X.new_empty(D, C), X.new_empty(C)
    _check(_fn("grad_sums", X.dtype)(g.data_ptr(), X.data_ptr(), D, B, C, G.data_ptr(), g0.data_ptr(),
                                     torch.get_num_threads()), "grad_sums")
    return G, g0


def grad_scale(g: torch.Tensor, X: torch.Tensor, a: torch.Tensor, k: torch.Tensor,
               corr0: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``g * a - X * k`` (``a, k [D, C]`` by row), plus ``corr0 [C]`` on row 0."""
    g, X = g.contiguous(), X.contiguous()
    D, B, C = X.shape
    a, k, corr0 = _small(a, X.dtype), _small(k, X.dtype), _small(corr0, X.dtype)
    dX = buffer_pool.take((D, B, C), X.dtype)
    _check(_fn("grad_apply", X.dtype)(g.data_ptr(), X.data_ptr(), D, B, C, a.data_ptr(), k.data_ptr(), _p(corr0),
                                      dX.data_ptr(), torch.get_num_threads()), "grad_scale")
    return dX
