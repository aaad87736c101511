"""C kernel for the point sum of the Zernike transform (``csrc/zernike.c``).

``transform_into`` computes, for every (cloud, channel) group, the sum over its points of the
outer products of the radial polynomials and the solid harmonics (what the batched matmuls of
:func:`holovae.transforms.zernike.zernike_transform`'s torch path compute), takes it to e3nn's
basis and writes it into the output row, in float32: one vector lane per group, no ``[K, S]``
temporaries, no scatter (see the C file's header for how). Built and cached
like the other kernels (:mod:`holovae.native`); ``HOLOVAE_NO_FUSED=1`` turns it off.
"""
from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Optional

import torch

from ..native import NativeLibrary

__all__ = ["available", "transform_into"]

_ABI_VERSION = 2


def _declare(lib: ctypes.CDLL) -> None:
    p, i64, c_int, c_double = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
    f = lib.holovae_zernike_transform
    f.restype = c_int
    # pts, pts_f32, weights, order, start, size, cloud, chan, G, lmax, n_max, r_max, c1, c0, c2,
    # seed, sa, sb, square, a_ptr, a_col, a_val, off, out, dim, nthreads
    f.argtypes = [p, c_int, p, p, p, p, p, p, i64, c_int, c_int, c_double, p, p, p, p, p, p, c_int,
                  p, p, p, p, p, i64, c_int]


_native = NativeLibrary("zernike", Path(__file__).resolve().parent / "csrc" / "zernike.c", _ABI_VERSION,
                        "holovae_zernike_abi_version", _declare, "Zernike transform kernel")


def available() -> bool:
    """Whether the kernel can be used (compiles and loads it on the first call)."""
    return _native.available()


def transform_into(out: torch.Tensor, points: torch.Tensor, weights: Optional[torch.Tensor], order: torch.Tensor,
                   start: torch.Tensor, size: torch.Tensor, cloud: torch.Tensor, chan: torch.Tensor, *,
                   lmax: int, n_max: int, r_max: float, recurrence: tuple, solid: dict, to_e3nn: tuple,
                   block_offsets: list, square: bool) -> None:
    """Write the coefficients of every (cloud, channel) group into ``out [B, dim]`` (float32,
    contiguous; other entries untouched), computed in float32.

    ``points [P, 3]`` float32/float64; ``weights [P]`` or None; group g's points are
    ``points[order[start[g]:start[g] + size[g]]]``, its row ``cloud[g]`` and channel ``chan[g]``
    (all int64); ``recurrence`` is ``(c1, c0, c2, seed)`` of ``_recurrence``, ``solid`` the
    solid harmonics' recurrence constants of ``_solid_coefs``, ``to_e3nn`` the
    ``A_l`` of ``_to_e3nn_64`` as compressed rows (``_to_e3nn_rows``) and ``block_offsets [L+1]`` where each degree's block
    starts in a row. Threads: ``torch.get_num_threads()``.
    """
    lib = _native.get()
    if out.dtype != torch.float32 or not out.is_contiguous() or out.dim() != 2:
        raise ValueError(f"out must be a contiguous [B, dim] float32 tensor, got {out.dtype} {tuple(out.shape)}")
    points = points.detach().contiguous()
    if points.dtype not in (torch.float32, torch.float64):
        points = points.to(torch.float64)
    w = None if weights is None else weights.detach().to(torch.float64).contiguous()
    order, start, size, cloud, chan = (t.to(torch.int64).contiguous() for t in (order, start, size, cloud, chan))
    c1, c0, c2, seed = (t.to(torch.float64).contiguous() for t in recurrence)
    sa, sb = (torch.cat([solid[l][i].reshape(-1) for l in range(1, lmax + 1)] + [torch.zeros(1, dtype=torch.float64)])
              for i in (0, 1))
    a_ptr, a_col, a_val = to_e3nn
    off = torch.tensor(block_offsets, dtype=torch.int64)
    G = start.numel()
    if G == 0:
        return
    rc = lib.holovae_zernike_transform(
        points.data_ptr(), int(points.dtype == torch.float32), 0 if w is None else w.data_ptr(),
        order.data_ptr(), start.data_ptr(), size.data_ptr(), cloud.data_ptr(), chan.data_ptr(), G, lmax, n_max,
        float(r_max), c1.data_ptr(), c0.data_ptr(), c2.data_ptr(), seed.data_ptr(), sa.data_ptr(), sb.data_ptr(),
        int(square),
        a_ptr.data_ptr(), a_col.data_ptr(), a_val.data_ptr(), off.data_ptr(),
        out.data_ptr(), out.shape[1], max(1, torch.get_num_threads()))
    if rc == -2:
        raise MemoryError("out of memory in the Zernike transform kernel")
    if rc != 0:
        raise ValueError(f"Zernike transform kernel: invalid arguments (returned {rc})")
