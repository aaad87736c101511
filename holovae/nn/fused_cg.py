"""Fused CPU kernel for the channel-wise Clebsch-Gordan "tensor square".

For a steerable feature matrix ``X [D_in, N]`` (component-major, see
:mod:`holovae.so3.irreps`) and a sparse list of CG entries ``(row, i, j, val)``::

    Y[r, n] = sum_{e: row[e] == r} val[e] * X[i[e], n] * X[j[e], n]          Y [n_out, N]

and its gradient ``dX[i] += val * dY[row] * X[j]``, ``dX[j] += val * dY[row] * X[i]``.

The kernel is the plain C file ``csrc/fused_cg.c`` (no torch headers), compiled on first use
into a cache directory and loaded with :mod:`ctypes` (see :mod:`holovae.native`).

Public API
----------
``available()``
    ``True`` if the kernel could be compiled/loaded. Any failure (no gcc, compile error, ...)
    is logged once with :func:`logging.warning` and makes it return ``False``; callers then use
    their pure-torch path. ``HOLOVAE_NO_FUSED=1`` in the environment forces ``False`` (it is
    read on every call, so tests can toggle it).
``cg_square_forward(X, row, i, j, val, n_out, *, out=None) -> Y``
``cg_square_backward(dY, X, row, i, j, val, *, out=None) -> dX``
    torch CPU tensors. ``X``/``dY`` float32 or float64 (same dtype), 2-D (non-contiguous input
    is copied). ``val`` 1-D, any floating dtype, cast to ``X.dtype``. ``row``/``i``/``j`` 1-D
    integer tensors of equal length; int32 (cheapest) and int64 are used as they are, other
    integer dtypes are converted to int64. The entries may come in any order and ``i > j`` is
    allowed. An out-of-range index raises ``IndexError``. ``out`` (optional) is a contiguous
    tensor of the result's shape and dtype that is overwritten (saves the allocation and its
    page faults for big outputs). Threads: ``torch.get_num_threads()``. The results carry no
    autograd history.
``cg_square(X, row, i, j, val, n_out) -> Y``
    The forward wrapped in an autograd function (gradient with respect to ``X`` only; not twice
    differentiable). Requires ``available()``.
``BlockSquare`` / ``block_square(op, xs)``
    The same product from the stacked degrees ``[sum_l (2l+1), B, C]`` into per-degree output
    blocks ``[2l3+1, B, paths*C]``, written in place through row maps (no reordering copies
    either way), with the per-sample signal power summed in
    the same pass; ``block_square`` is differentiable in the inputs (hand-written backward,
    the power's gradient folded into the kernel's read of the output gradient).
``BlockSquare.forward_linear(X, weights, keep_square=False)``
    The square and each output block's matmul by its weight in one pass (no autograd), chunk
    by chunk of samples, so the gemm reads the square from the cache; for inference the square
    is never written to memory, for training (``keep_square``) it is copied out once for the
    backward. The gemm is torch's own MKL, called from the kernel's threads (``blas_gemm``;
    where torch has no MKL, callers use ``forward`` and a matmul).
``BlockSquare.backward_linear(dH, weights, gpower, X, ys, weight_grads=False)``
    Training: the gradient in ``X`` of the same products (and of the power) from the
    products' gradient ``dH``, and with ``weight_grads`` the weights' gradients
    ``y_b^T dH_b``; the square's output gradients ``dH_b @ W_b^T`` are made chunk by chunk in
    the cache and consumed there by the kernel's backward, and each chunk of the kept square
    is read once, for the weights' gradients and the power's.
``clear_plan_cache()``
    Frees the cached plans (see below).

Performance notes: the kernel sorts the entries into a "plan" once per distinct entry list and
keeps up to 64 plans in an LRU cache keyed by the exact bytes of ``(row, i, j, val)`` (checked
with memcmp on every call, so changing the tensors in place is safe); a call with known entries
costs one pass over them (~10 us for 15k int32 entries). The backward plan groups the entries
by their unordered input pair and sums each pair's output gradients once for both of its
inputs (~1.8 vector FMAs per entry instead of 4; blocks whose pairs are rarely shared keep the
row-gather form, see ``csrc/fused_cg.c``). Each OpenMP thread keeps its packing buffer
(``D_in * 192`` bytes forward, ``(2 D_in + D_out) * 192`` backward) between calls. Outputs of 16 MiB or more are written
with streaming stores. The outputs this module allocates come from
:mod:`holovae.nn.buffer_pool` (reused buffers; fresh big ones get transparent huge pages).
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Optional

import torch

from ..native import NativeLibrary
from . import buffer_pool

__all__ = ["available", "cg_square_forward", "cg_square_backward", "cg_square", "BlockSquare", "block_square",
           "blas_gemm", "clear_plan_cache", "plan_builds"]

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).resolve().parent / "csrc" / "fused_cg.c"
#: :meth:`BlockSquare.forward_linear`'s chunk of samples: the widest block's CG output for one
#: chunk takes at most this many bytes (measured on a 512 KiB L2: 96 KiB 17% and 768 KiB 5%
#: slower for the protein L = 6 block, 192 KiB as fast for MNIST's L = 10)
LINEAR_CHUNK_BYTES = 384 * 1024
#: :meth:`BlockSquare.backward_linear`'s chunk: all blocks' output gradients for one chunk
LINEAR_BACKWARD_CHUNK_BYTES = 1536 * 1024
_ABI_VERSION = 7


# --------------------------------------------------------------------------------------------
# build & load (holovae.native)
# --------------------------------------------------------------------------------------------

def _declare(lib: ctypes.CDLL) -> None:
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for sfx in ("f32", "f64"):
        fwd = getattr(lib, f"holovae_cg_forward_{sfx}")
        fwd.restype = c_int
        # X, d_in, N, row, i, j, idx64, val, nnz, Y, d_out, nthreads
        fwd.argtypes = [p, i64, i64, p, p, p, c_int, p, i64, p, i64, c_int]
        bwd = getattr(lib, f"holovae_cg_backward_{sfx}")
        bwd.restype = c_int
        # dY, d_out, X, d_in, N, row, i, j, idx64, val, nnz, dX, nthreads
        bwd.argtypes = [p, i64, p, i64, i64, p, p, p, c_int, p, i64, p, c_int]
        mfwd = getattr(lib, f"holovae_cg_mapped_forward_{sfx}")
        mfwd.restype = c_int
        # xrows, xld, d_in, N, C, row, i, j, idx64, val, nnz, yrows, yld, d_out, pw, power, nthreads
        mfwd.argtypes = [p, p, i64, i64, i64, p, p, p, c_int, p, i64, p, p, i64, p, p, c_int]
        mbwd = getattr(lib, f"holovae_cg_mapped_backward_{sfx}")
        mbwd.restype = c_int
        # dyrows, dyld, yrows, gam, gpow, d_out, xrows, xld, d_in, N, C, row, i, j, idx64, val,
        # nnz, dxrows, dxld, nthreads
        mbwd.argtypes = [p, p, p, p, p, i64, p, p, i64, i64, i64, p, p, p, c_int, p, i64, p, p,
                         c_int]
        lin = getattr(lib, f"holovae_cg_linear_forward_{sfx}")
        lin.restype = c_int
        # xrows, xld, d_in, N, C, row, i, j, idx64, val, nnz, nblk, blk_d, blk_k, w, c_out, H,
        # h_row0, pw, power, tstore, chunk, gemm, gemm_threads, nthreads
        lin.argtypes = [p, p, i64, i64, i64, p, p, p, c_int, p, i64, i64, p, p, p, i64, p, p, p, p,
                        p, i64, p, p, c_int]
    for sfx in ("f32", "f64"):
        lbw = getattr(lib, f"holovae_cg_linear_backward_{sfx}")
        lbw.restype = c_int
        # dH, h_row0, c_out, w, nblk, blk_d, blk_k, tstore, gam, gpow, dwt, xrows, xld, d_in, N,
        # C, row, i, j, idx64, val, nnz, dxrows, chunk, gemm, gemm_threads, nthreads
        lbw.argtypes = [p, p, i64, p, i64, p, p, p, p, p, p, p, p, i64, i64, i64, p, p, p, c_int, p, i64,
                        p, i64, p, p, c_int]
    lib.holovae_cg_plan_builds.restype = i64
    lib.holovae_cg_plan_builds.argtypes = []
    lib.holovae_cg_clear_cache.restype = None
    lib.holovae_cg_clear_cache.argtypes = []


_native = NativeLibrary("fused_cg", _SOURCE, _ABI_VERSION, "holovae_cg_abi_version", _declare, "fused CG kernel")


def _load() -> ctypes.CDLL:
    """Compile (unless cached) and load the kernel (see :mod:`holovae.native`)."""
    return _native.load()


def available() -> bool:
    """Whether the fused kernel can be used (compiles and loads it on the first call)."""
    return _native.available()


def clear_plan_cache() -> None:
    """Free the kernel's cached plans and its pooled output buffers."""
    buffer_pool.clear()
    if _native.lib is not None:
        _native.lib.holovae_cg_clear_cache()


def plan_builds() -> int:
    """How many plans the kernel has built (cache misses) since it was loaded: constant once a
    model's steps run on cached plans."""
    return int(_get_lib().holovae_cg_plan_builds())


def _get_lib() -> ctypes.CDLL:
    return _native.get()


_GEMM: dict = {}


def blas_gemm(dtype: torch.dtype) -> Optional[tuple[int, int]]:
    """The addresses of the Fortran ``sgemm_`` / ``dgemm_`` of torch's own MKL and of MKL's
    ``MKL_Set_Num_Threads_Local``, or None.

    :meth:`BlockSquare.forward_linear` calls the gemm from inside its OpenMP threads, each
    thread set to one gemm thread first. Other BLAS libraries may start threads of their own
    there, so only MKL is used (None on builds without it, or where its symbols are not
    exported)."""
    if dtype not in _GEMM:
        addr = None
        name = {torch.float32: "sgemm_", torch.float64: "dgemm_"}.get(dtype)
        lib_path = Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"
        if name and torch.backends.mkl.is_available() and lib_path.is_file():
            try:
                lib = ctypes.CDLL(str(lib_path))
                addr = tuple(ctypes.cast(getattr(lib, n), ctypes.c_void_p).value
                             for n in (name, "MKL_Set_Num_Threads_Local"))
            except (OSError, AttributeError):
                addr = None
        _GEMM[dtype] = addr
    return _GEMM[dtype]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------

_FLOATS = (torch.float32, torch.float64)


def _check_matrix(name: str, t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name} must be a CPU tensor, got device {t.device}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D [components, N], got shape {tuple(t.shape)}")
    return t.detach().contiguous()


def _check_entries(row, i, j, val, dtype):
    idx = []
    for name, t in (("row", row), ("i", i), ("j", j)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be a CPU tensor, got device {t.device}")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
        idx.append(t)
    if not isinstance(val, torch.Tensor):
        raise TypeError(f"val must be a torch.Tensor, got {type(val).__name__}")
    if val.device.type != "cpu":
        raise ValueError(f"val must be a CPU tensor, got device {val.device}")
    if not val.dtype.is_floating_point:
        raise TypeError(f"val must be a floating tensor, got {val.dtype}")
    if val.dim() != 1:
        raise ValueError(f"val must be 1-D, got shape {tuple(val.shape)}")
    nnz = val.shape[0]
    for name, t in zip(("row", "i", "j"), idx):
        if t.shape[0] != nnz:
            raise ValueError(f"row, i, j and val must have equal lengths, got "
                             f"{[t.shape[0] for t in idx] + [nnz]}")
    dtypes = {t.dtype for t in idx}
    if dtypes == {torch.int32}:
        idx64 = 0
    else:
        idx64 = 1
        idx = [t.to(torch.int64) for t in idx]
    idx = [t.contiguous() for t in idx]
    return idx, idx64, val.detach().to(dtype).contiguous(), nnz


def _raise(rc: int, what: str) -> None:
    if rc == -1:
        raise IndexError(f"{what}: an entry index is out of range (need 0 <= row < n_out, "
                         f"0 <= i, j < D_in)")
    if rc == -2:
        raise MemoryError(f"{what}: out of memory in the fused CG kernel")
    raise ValueError(f"{what}: invalid arguments (fused CG kernel returned {rc})")


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + b.numel() * b.element_size() and b0 < a0 + a.numel() * a.element_size()




def _output(out: Optional[torch.Tensor], shape: tuple, X: torch.Tensor, what: str,
            inputs: tuple = ()) -> torch.Tensor:
    if out is None:
        return buffer_pool.fresh(shape, X.dtype)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{what}: out must be a torch.Tensor, got {type(out).__name__}")
    if out.device.type != "cpu" or out.dtype != X.dtype or tuple(out.shape) != tuple(shape) \
            or not out.is_contiguous():
        raise ValueError(f"{what}: out must be a contiguous CPU {X.dtype} tensor of shape "
                         f"{tuple(shape)}, got {out.dtype} {tuple(out.shape)} on {out.device}"
                         f"{'' if out.is_contiguous() else ' (non-contiguous)'}")
    if out.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(f"{what}: out must not require grad")
    if out.numel() and any(t.numel() and _overlaps(out, t) for t in (X, *inputs)):
        raise ValueError(f"{what}: out must not overlap the inputs")
    return out


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


# --------------------------------------------------------------------------------------------
# public kernels
# --------------------------------------------------------------------------------------------

def cg_square_forward(X: torch.Tensor, row: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                      val: torch.Tensor, n_out: int, *,
                      out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``Y[r] = sum_{e: row[e]==r} val[e] * X[i[e]] * X[j[e]]`` -> ``Y [n_out, N]``.

    ``out``: optional contiguous ``[n_out, N]`` tensor of ``X``'s dtype to write into (every
    element is overwritten), which saves the allocation (and its page faults) for big outputs.
    """
    X = _check_matrix("X", X)
    n_out = int(n_out)
    if n_out < 0:
        raise ValueError(f"n_out must be >= 0, got {n_out}")
    (row, i, j), idx64, val, nnz = _check_entries(row, i, j, val, X.dtype)
    d_in, N = X.shape
    lib = _get_lib()
    if n_out == 0 or d_in == 0 or N == 0:
        if nnz and (n_out == 0 or d_in == 0):
            _raise(-1, "cg_square_forward")
        return _output(out, (n_out, N), X, "cg_square_forward").zero_()
    Y = _output(out, (n_out, N), X, "cg_square_forward")
    fn = lib.holovae_cg_forward_f32 if X.dtype == torch.float32 else lib.holovae_cg_forward_f64
    rc = fn(_ptr(X), d_in, N, _ptr(row), _ptr(i), _ptr(j), idx64, _ptr(val), nnz,
            _ptr(Y), n_out, torch.get_num_threads())
    if rc != 0:
        _raise(rc, "cg_square_forward")
    return Y


def cg_square_backward(dY: torch.Tensor, X: torch.Tensor, row: torch.Tensor, i: torch.Tensor,
                       j: torch.Tensor, val: torch.Tensor, *,
                       out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Gradient of :func:`cg_square_forward` with respect to ``X`` -> ``dX [D_in, N]``.

    ``out``: optional contiguous ``[D_in, N]`` tensor of ``X``'s dtype to write into.
    """
    dY = _check_matrix("dY", dY)
    X = _check_matrix("X", X)
    if dY.dtype != X.dtype:
        raise TypeError(f"dY and X must have the same dtype, got {dY.dtype} and {X.dtype}")
    if dY.shape[1] != X.shape[1]:
        raise ValueError(f"dY [n_out, N] and X [D_in, N] disagree on N: "
                         f"{tuple(dY.shape)} vs {tuple(X.shape)}")
    (row, i, j), idx64, val, nnz = _check_entries(row, i, j, val, X.dtype)
    n_out = dY.shape[0]
    d_in, N = X.shape
    lib = _get_lib()
    if n_out == 0 or d_in == 0 or N == 0:
        if nnz and (n_out == 0 or d_in == 0):
            _raise(-1, "cg_square_backward")
        return _output(out, (d_in, N), X, "cg_square_backward", (dY,)).zero_()
    dX = _output(out, (d_in, N), X, "cg_square_backward", (dY,))
    fn = lib.holovae_cg_backward_f32 if X.dtype == torch.float32 else lib.holovae_cg_backward_f64
    rc = fn(_ptr(dY), n_out, _ptr(X), d_in, N, _ptr(row), _ptr(i), _ptr(j), idx64, _ptr(val),
            nnz, _ptr(dX), torch.get_num_threads())
    if rc != 0:
        _raise(rc, "cg_square_backward")
    return dX


class _CGSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, row, i, j, val, n_out):
        ctx.save_for_backward(X, row, i, j, val)
        return cg_square_forward(X, row, i, j, val, n_out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dY):
        X, row, i, j, val = ctx.saved_tensors
        dX = cg_square_backward(dY, X, row, i, j, val) if ctx.needs_input_grad[0] else None
        return dX, None, None, None, None, None


def cg_square(X: torch.Tensor, row: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
              val: torch.Tensor, n_out: int) -> torch.Tensor:
    """Differentiable (in ``X``) fused CG tensor square; see :func:`cg_square_forward`."""
    return _CGSquare.apply(X, row, i, j, val, int(n_out))


# --------------------------------------------------------------------------------------------
# the square between per-degree feature tensors (no layout copies)
# --------------------------------------------------------------------------------------------

class BlockSquare:
    """The CG square read from and written to the model's feature tensors directly.

    Input: the degrees stacked, ``X [D_in, B, C]`` (rows ``(l, m)`` of the entries, ``D_in =
    sum_l (2l+1)``). Outputs: one tensor per output block ``(d, P)``, ``y [d, B, P*C]`` whose
    entry rows are ordered ``(block, p, m)`` (``m < d``); output channel ``p*C + c`` is row
    ``(p, m)`` of channel ``c``. And the signal power ``power[b] = sum_rows w_row *
    sum_c y[row, b, c]^2`` with ``w = 1/d`` per block (the mean over components of the total
    power, :class:`holovae.nn.norms.SignalNorm`), summed while the outputs are still in
    registers.

    The kernel writes rows through pointer maps (``csrc/fused_cg.c``, "row maps"), so the
    (path, m) -> (m, path) reordering of the outputs, and its inverse in the backward, is never
    materialised. float32/float64, CPU.
    """

    def __init__(self, row: torch.Tensor, i: torch.Tensor, j: torch.Tensor, val: torch.Tensor,
                 degrees_in: tuple[int, ...], blocks: tuple[tuple[int, int], ...],
                 channels: int, dtype: torch.dtype):
        import numpy as np
        self._np = np
        self.degrees_in = tuple(int(l) for l in degrees_in)
        self.blocks = tuple((int(d), int(k)) for d, k in blocks)
        self.C = int(channels)
        self.dtype = dtype
        self.d_in = sum(2 * l + 1 for l in self.degrees_in)
        self.d_out = sum(d * k for d, k in self.blocks)
        (row, self.i, self.j), self.idx64, self.val, self.nnz = _check_entries(
            row.to(torch.int32), i.to(torch.int32), j.to(torch.int32), val, dtype)
        if self.nnz and (int(row.max()) >= self.d_out or int(max(self.i.max(), self.j.max())) >= self.d_in):
            raise IndexError("BlockSquare: an entry index is out of range")
        # The kernel numbers a block's rows (m, p), their order in memory (row (p, m) starts at
        # m*B*P*C + p*C), so that it reads and writes each sample's P*C values in one sweep,
        # which the hardware prefetcher follows; the callers' numbering (p, m) is mapped here.
        perm, base = [], 0
        for d, k in self.blocks:
            perm.append(base + (np.arange(d)[None, :] * k + np.arange(k)[:, None]).ravel())   # (p, m) -> m*k + p
            base += d * k
        perm = torch.from_numpy(np.concatenate(perm) if perm else np.zeros(0, np.int64))
        self.row = perm[row.long()].to(torch.int32).contiguous() if self.nnz else row
        w = torch.cat([torch.full((d * k,), 1.0 / d, dtype=torch.float64) for d, k in self.blocks]) \
            if self.blocks else torch.zeros(0, dtype=torch.float64)
        self.pw = w.to(dtype).contiguous()
        self.gam = (2 * w).to(dtype).contiguous()
        # the linear entry points' per-block arrays: rows, paths, first stacked output row, and
        # the power's gradient scale 2/d
        self._blk_d = np.array([d for d, _ in self.blocks], dtype=np.int64)
        self._blk_k = np.array([k for _, k in self.blocks], dtype=np.int64)
        self._h_row0 = np.concatenate([[0], np.cumsum(self._blk_d)[:-1]]).astype(np.int64) if self.blocks \
            else np.zeros(0, np.int64)
        self._gam_blocks = torch.tensor([2.0 / d for d, _ in self.blocks], dtype=dtype)
        self._y_owner = np.repeat(np.arange(len(self.blocks)), [d * k for d, k in self.blocks])
        self._maps: dict = {}

    def _layout(self, B: int):
        """Per-row byte offsets (from the owning tensor's start) and ``ld`` arrays for batch B."""
        np = self._np
        if B not in self._maps:
            es = torch.empty((), dtype=self.dtype).element_size()
            C = self.C
            x_off = np.arange(self.d_in, dtype=np.int64) * B * C * es
            x_ld = np.full(self.d_in, C, dtype=np.int64)
            y_off, y_ld = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
            for d, k in self.blocks:
                m, p = np.meshgrid(np.arange(d), np.arange(k), indexing="ij")  # rows (m, p)
                y_off.append(((m * B * k * C + p * C) * es).ravel().astype(np.int64))
                y_ld.append(np.full(d * k, k * C, dtype=np.int64))
            self._maps[B] = (x_off, x_ld, np.concatenate(y_off), np.concatenate(y_ld))
        return self._maps[B]

    def _y_addresses(self, ys, offsets):
        np = self._np
        bases = np.array([t.data_ptr() for t in ys] or [0], dtype=np.int64)
        return bases[self._y_owner] + offsets if len(offsets) else np.zeros(1, np.int64)

    def _check_input(self, X: torch.Tensor) -> int:
        if not isinstance(X, torch.Tensor) or X.device.type != "cpu" or X.dtype != self.dtype \
                or X.dim() != 3 or X.shape[0] != self.d_in or X.shape[2] != self.C or not X.is_contiguous():
            got = f"{X.dtype} {tuple(X.shape)} on {X.device}" if isinstance(X, torch.Tensor) else type(X).__name__
            raise ValueError(f"BlockSquare: the input must be a contiguous CPU {self.dtype} tensor "
                             f"[{self.d_in}, B, {self.C}], got {got}")
        return X.shape[1]

    def forward(self, X: torch.Tensor):
        """``X [D_in, B, C]`` -> (``[y [d, B, P*C]]`` per block, ``power [B]``)."""
        B = self._check_input(X)
        N = B * self.C
        lib = _get_lib()
        ys = buffer_pool.take_split([(d, B, k * self.C) for d, k in self.blocks], self.dtype)
        power = torch.empty(B, dtype=self.dtype)
        if N == 0 or self.d_out == 0:
            for y in ys:
                y.zero_()
            return ys, power.zero_()
        x_off, x_ld, y_off, y_ld = self._layout(B)
        xa = x_off + X.data_ptr()
        ya = self._y_addresses(ys, y_off)
        fn = lib.holovae_cg_mapped_forward_f32 if self.dtype == torch.float32 else lib.holovae_cg_mapped_forward_f64
        rc = fn(xa.ctypes.data, x_ld.ctypes.data, self.d_in, N, self.C,
                _ptr(self.row), _ptr(self.i), _ptr(self.j), self.idx64, _ptr(self.val), self.nnz,
                ya.ctypes.data, y_ld.ctypes.data, self.d_out, _ptr(self.pw), _ptr(power),
                torch.get_num_threads())
        if rc != 0:
            _raise(rc, "BlockSquare.forward")
        return ys, power

    def runs_linear(self) -> bool:
        """Whether :meth:`forward_linear` can run (a BLAS gemm to call from the kernel)."""
        return blas_gemm(self.dtype) is not None

    def forward_linear(self, X: torch.Tensor, weights, keep_square: bool = False):
        """The square, each block times its weight, in one pass with no autograd.

        ``X [D_in, B, C]``, ``weights``: ``W_b [k_b*C, C_out]`` per block (the rows of the
        block's nonzero paths; ignored where ``k_b == 0``) -> (``H [sum_b d_b, B, C_out]``, block
        ``b``'s rows ``y_b @ W_b`` (zero where ``k_b == 0``), ``power [B]`` as :meth:`forward`),
        and with ``keep_square`` (training) also the square's outputs ``[y_b]`` as :meth:`forward`
        returns them, for :meth:`backward_linear`.

        The samples are cut into chunks whose CG output fits the cache; each thread squares its
        chunk block by block into a private buffer and multiplies it there, so the gemm reads the
        square's output (~10x the width of ``H``) from the cache, and for inference it is never
        written to memory at all (``csrc/fused_cg.c``).
        """
        B = self._check_input(X)
        gemm = blas_gemm(self.dtype)
        if gemm is None:
            raise RuntimeError("BlockSquare.forward_linear needs torch's MKL gemm (see runs_linear)")
        c_out, blk_d, blk_k, h_row0, wp = self._linear_args(weights)
        H = buffer_pool.take((int(blk_d.sum()), B, c_out), self.dtype)
        if B == 0 or c_out == 0:
            ys, power = self.forward(X)
            return (H.zero_(), power, ys) if keep_square else (H.zero_(), power)
        power = torch.empty(B, dtype=self.dtype)
        ys = buffer_pool.take_split([(d, B, k * self.C) for d, k in self.blocks], self.dtype) \
            if keep_square else None
        tstore = self._np.array([y.data_ptr() if k else 0 for (_, k), y in zip(self.blocks, ys)],
                                dtype=self._np.int64) if keep_square else None
        x_off, x_ld, _, _ = self._layout(B)
        xa = x_off + X.data_ptr()
        es = H.element_size()
        widest = max(d * k * self.C * es for d, k in self.blocks)
        chunk = max(1, LINEAR_CHUNK_BYTES // widest)
        lib = _get_lib()
        fn = lib.holovae_cg_linear_forward_f32 if self.dtype == torch.float32 else lib.holovae_cg_linear_forward_f64
        rc = fn(xa.ctypes.data, x_ld.ctypes.data, self.d_in, B * self.C, self.C,
                _ptr(self.row), _ptr(self.i), _ptr(self.j), self.idx64, _ptr(self.val), self.nnz,
                len(self.blocks), blk_d.ctypes.data, blk_k.ctypes.data, wp.ctypes.data, c_out,
                H.data_ptr(), h_row0.ctypes.data, _ptr(self.pw), power.data_ptr(),
                None if tstore is None else tstore.ctypes.data, chunk, *gemm, torch.get_num_threads())
        if rc != 0:
            _raise(rc, "BlockSquare.forward_linear")
        return (H, power, ys) if keep_square else (H, power)

    def _linear_args(self, weights):
        np = self._np
        if len(weights) != len(self.blocks):
            raise ValueError(f"BlockSquare: {len(weights)} weights for {len(self.blocks)} blocks")
        c_out = None
        for (d, k), W in zip(self.blocks, weights):
            if k == 0:
                continue
            c_out = W.shape[-1] if c_out is None else c_out
            if W.dim() != 2 or tuple(W.shape) != (k * self.C, c_out) or W.dtype != self.dtype \
                    or W.device.type != "cpu" or not W.is_contiguous():
                raise ValueError(f"BlockSquare: weight {tuple(W.shape)} {W.dtype} for a block "
                                 f"of {k} paths x {self.C} channels; need a contiguous CPU {self.dtype} "
                                 f"[{k * self.C}, C_out] (C_out equal for all blocks)")
        if c_out is None:
            raise ValueError("BlockSquare: no block has paths")
        wp = np.array([W.data_ptr() if k else 0 for (_, k), W in zip(self.blocks, weights)], dtype=np.int64)
        return c_out, self._blk_d, self._blk_k, self._h_row0, wp

    def backward_linear(self, dH: torch.Tensor, weights, gpower, X: torch.Tensor, ys,
                        weight_grads: bool = False):
        """Training: the gradient with respect to ``X`` of ``power`` and of every block's
        ``y_b @ W_b`` (:meth:`forward`'s outputs times ``weights``), from ``dH [sum_b d_b, B,
        C_out]`` (that product's gradient, stacked as :meth:`forward_linear`'s ``H``) and
        ``gpower [B]`` (or None) -> ``dX [D_in, B, C]``; with ``weight_grads``, ``(dX, [dW_b])``,
        ``dW_b = y_b^T dH_b [k_b*C, C_out]`` (a transposed view; zero where ``k_b == 0``).
        ``ys``: :meth:`forward`'s outputs (or :meth:`forward_linear`'s kept square).

        ``dy_b = dH_b @ W_b^T``, the width of the square's output, is made chunk by chunk in the
        cache and consumed there by the kernel's backward instead of going through memory; the
        chunk's ``y_b`` is read once for both ``dW_b`` and the power's gradient."""
        B = self._check_input(X)
        gemm = blas_gemm(self.dtype)
        if gemm is None:
            raise RuntimeError("BlockSquare.backward_linear needs torch's MKL gemm (see runs_linear)")
        c_out, blk_d, blk_k, h_row0, wp = self._linear_args(weights)
        if tuple(dH.shape) != (int(blk_d.sum()), B, c_out) or dH.dtype != self.dtype:
            raise ValueError(f"BlockSquare.backward_linear: dH {tuple(dH.shape)} {dH.dtype}, expected "
                             f"{(int(blk_d.sum()), B, c_out)} {self.dtype}")
        shapes = [(d, B, k * self.C) for d, k in self.blocks]
        if len(ys) != len(self.blocks) or any(tuple(y.shape) != s or y.dtype != self.dtype or not y.is_contiguous()
                                              for y, s in zip(ys, shapes)):
            raise ValueError(f"BlockSquare.backward_linear: the square's outputs must be contiguous "
                             f"{self.dtype} tensors {shapes}")
        dWT = [torch.empty(c_out, k * self.C, dtype=self.dtype) for _, k in self.blocks] if weight_grads else None
        if c_out == 0 or B == 0:   # nothing for the kernel's gemm: the power's gradient alone
            dX = self.backward([None] * len(self.blocks), gpower, X, ys) if B else \
                buffer_pool.take((self.d_in, B, self.C), self.dtype).zero_()
            return (dX, [g.zero_().t() for g in dWT]) if weight_grads else dX
        dH = dH.contiguous()
        dX = buffer_pool.take((self.d_in, B, self.C), self.dtype)
        x_off, x_ld, _, _ = self._layout(B)
        xa = x_off + X.data_ptr()
        dxa = x_off + dX.data_ptr()
        np = self._np
        tstore = np.array([y.data_ptr() if k else 0 for (_, k), y in zip(self.blocks, ys)], dtype=np.int64)
        if gpower is not None:
            gpower = gpower.to(self.dtype).contiguous()
            gp, gm = _ptr(gpower), _ptr(self._gam_blocks)
        else:
            gp = gm = None
        dwt = np.array([g.data_ptr() if k else 0 for (_, k), g in zip(self.blocks, dWT)], dtype=np.int64) \
            if weight_grads else None
        es = dX.element_size()
        chunk = max(1, LINEAR_BACKWARD_CHUNK_BYTES // (self.d_out * self.C * es))
        lib = _get_lib()
        fn = lib.holovae_cg_linear_backward_f32 if self.dtype == torch.float32 else lib.holovae_cg_linear_backward_f64
        rc = fn(dH.data_ptr(), h_row0.ctypes.data, c_out, wp.ctypes.data, len(self.blocks),
                blk_d.ctypes.data, blk_k.ctypes.data, tstore.ctypes.data, gm, gp,
                None if dwt is None else dwt.ctypes.data, xa.ctypes.data, x_ld.ctypes.data,
                self.d_in, B * self.C, self.C, _ptr(self.row), _ptr(self.i), _ptr(self.j), self.idx64,
                _ptr(self.val), self.nnz, dxa.ctypes.data, chunk, *gemm, torch.get_num_threads())
        if rc != 0:
            _raise(rc, "BlockSquare.backward_linear")
        if not weight_grads:
            return dX
        return dX, [g.t() for g in dWT]   # a block without paths: [0, C_out], nothing to fill

    def backward(self, gys, gpower, X: torch.Tensor, ys) -> torch.Tensor:
        """Gradient of :meth:`forward` with respect to its input -> ``dX [D_in, B, C]``.

        ``gys``: gradients of the outputs (``None`` = zero); ``gpower``: of the power (or None).
        """
        B = self._check_input(X)
        N = B * self.C
        gys = [torch.zeros_like(y) if g is None else g.to(self.dtype).contiguous() for g, y in zip(gys, ys)]
        for g, y in zip(gys, ys):
            if g.shape != y.shape:
                raise ValueError(f"BlockSquare.backward: gradient {tuple(g.shape)} for output {tuple(y.shape)}")
        dX = buffer_pool.take((self.d_in, B, self.C), self.dtype)
        if N == 0 or self.d_out == 0:
            return dX.zero_()
        lib = _get_lib()
        x_off, x_ld, y_off, y_ld = self._layout(B)
        xa = x_off + X.data_ptr()
        dya = self._y_addresses(gys, y_off)
        dxa = x_off + dX.data_ptr()
        if gpower is not None:
            gpower = gpower.to(self.dtype).contiguous()
            ya = self._y_addresses(ys, y_off)
            yp, gam, gp = ya.ctypes.data, _ptr(self.gam), _ptr(gpower)
        else:
            yp = gam = gp = None
        fn = lib.holovae_cg_mapped_backward_f32 if self.dtype == torch.float32 else lib.holovae_cg_mapped_backward_f64
        rc = fn(dya.ctypes.data, y_ld.ctypes.data, yp, gam, gp, self.d_out,
                xa.ctypes.data, x_ld.ctypes.data, self.d_in, N, self.C,
                _ptr(self.row), _ptr(self.i), _ptr(self.j), self.idx64, _ptr(self.val), self.nnz,
                dxa.ctypes.data, x_ld.ctypes.data, torch.get_num_threads())
        if rc != 0:
            _raise(rc, "BlockSquare.backward")
        return dX


class _BlockSquareFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op, X):
        X = X.contiguous()
        ys, power = op.forward(X)
        ctx.op = op
        ctx.save_for_backward(X, *ys)
        return (*ys, power)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        X, *ys = ctx.saved_tensors
        return None, ctx.op.backward(list(grads[:-1]), grads[-1], X, ys)


def block_square(op: BlockSquare, X: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Differentiable :meth:`BlockSquare.forward` (in ``X``) -> (outputs, power)."""
    out = _BlockSquareFunction.apply(op, X)
    return list(out[:-1]), out[-1]
