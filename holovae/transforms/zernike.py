"""3D Zernike Fourier transform (ZFT) of point clouds, and its inverse.

The basis of the unit ball is ``Z_nlm(x) = R_nl(|x|) Y_lm(x/|x|)`` with e3nn's real spherical
harmonics ('integral' normalisation) and the radial 3D Zernike polynomials

    R_nl(x) = N_nl x^l P_k^{(0, l+1/2)}(2x^2 - 1),   k = (n - l)/2,  n >= l,  n - l even,

``P_k^{(a,b)}`` the Jacobi polynomials. ``kind="orthonormal"`` uses ``N_nl = sqrt(2n+3)``, so that
``int_0^1 R_nl R_n'l x^2 dx = delta_nn'``; ``kind="authors"`` reproduces the authors' formula
(integer binomial ``binom(k+l, k)`` in place of ``binom(k+l+1/2, k)``), which is orthogonal but not
normalised (``int R_40^2 x^2 dx = 0.284``). Both share the sign ``R_nl(1) > 0``.

A point cloud (weights ``w_p``, channels ``c_p``) has coefficients
``f[c, n, l, m] = sum_{p in c} w_p R_nl(r_p / r_max) Y_lm(p)``, stored flat in e3nn ``mul x ir``
order with, for degree l, ``mul = n_channels * n_radial(l)`` and mul index ``c * n_radial(l) + k``.

How the transform is fast: points are sorted into (cloud, channel) groups; groups of similar size
are padded into batches ``[G, M]``; radial polynomials ``[K_r, G*M]`` and solid harmonics
``[(L+1)^2, G*M]`` are computed with row-vectorised recurrences (no per-point Python), and the
sum over points of their outer products is one batched matmul per degree. The solid harmonics
use a cheap unnormalised basis (Legendre recurrence x powers of x+iy); the change to e3nn's
basis is a fixed ``[2l+1, 2l+1]`` matrix per degree, fitted once against e3nn and applied to the
summed coefficients, not to every point.
"""
from __future__ import annotations

import functools
import math
import threading
from typing import Dict, Optional

import numpy as np
import torch
from holovae._e3nn import o3

from ..so3 import irreps_from_channels, real_spherical_harmonics
from . import zernike_kernel

__all__ = ["n_radial", "zernike_radial", "zernike_irreps", "zernike_transform",
           "inverse_zernike_transform", "zernike_basis", "cubic_grid"]

_KINDS = ("orthonormal", "authors")


def n_radial(l: int, n_max: int) -> int:
    """Number of radial functions of degree ``l``: ``n = l, l+2, ..., <= n_max``."""
    return 0 if l > n_max else (n_max - l) // 2 + 1


def _check_sizes(lmax: int, n_max: int) -> None:
    if lmax < 0 or n_max < 0:
        raise ValueError(f"lmax and n_max must be >= 0, got lmax={lmax}, n_max={n_max}")
    if lmax > n_max:
        raise ValueError(f"lmax={lmax} > n_max={n_max}: degrees above n_max have no radial function")


def zernike_irreps(n_channels: int, lmax: int, n_max: int) -> o3.Irreps:
    """Irreps of the ZFT output: degree l has ``n_channels * n_radial(l)`` copies.

    ``zernike_irreps(4, 4, 20) == 44x0e+40x1e+40x2e+36x3e+36x4e`` (dim 940).
    """
    _check_sizes(lmax, n_max)
    if n_channels < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}")
    return irreps_from_channels([n_channels * n_radial(l, n_max) for l in range(lmax + 1)])


# ----------------------------------------------------------------------------------------------
# radial part
# ----------------------------------------------------------------------------------------------
def _norm_const(n: int, l: int, kind: str) -> float:
    """``N_nl``: ``sqrt(2n+3)`` (orthonormal), times ``binom(k+l, k) / binom(k+l+1/2, k)`` (authors)."""
    k = (n - l) // 2
    c = math.sqrt(2 * n + 3)
    if kind == "authors":
        # ratio of binomials through log-gamma: exact enough and no overflow at large n
        c *= math.exp(math.lgamma(k + l + 1) - math.lgamma(l + 1)
                      - math.lgamma(k + l + 1.5) + math.lgamma(l + 1.5))
    return c


@functools.lru_cache(maxsize=None)
def _recurrence(n_max: int, lmax: int, kind: str):
    """Coefficients of the normalised Jacobi recurrence, one column per degree:
    ``Rt_k = (c1_k t + c0_k) Rt_{k-1} - c2_k Rt_{k-2}``, ``Rt_0 = N_{l,l}``, with
    ``Rt_k = N_{l+2k,l} P_k^{(0,l+1/2)}(t)`` (the constants are folded in, so no extra pass).
    Returns float64 ``c1, c0, c2 [k_max+1, L+1, 1]`` and ``seed [L+1, 1]``."""
    if kind not in _KINDS:
        raise ValueError(f"radial kind must be one of {_KINDS}, got {kind!r}")
    k_max = n_max // 2
    c1 = torch.zeros(k_max + 1, lmax + 1, 1, dtype=torch.float64)
    c0, c2 = torch.zeros_like(c1), torch.zeros_like(c1)
    seed = torch.zeros(lmax + 1, 1, dtype=torch.float64)
    for l in range(lmax + 1):
        beta = l + 0.5
        N = [_norm_const(l + 2 * k, l, kind) for k in range(k_max + 1)]   # defined past n_max too
        seed[l] = N[0]
        for k in range(1, k_max + 1):
            s = 2 * k + beta
            a = 2 * k * (k + beta) * (s - 2)
            c1[k, l] = (s - 1) * s * (s - 2) / a * N[k] / N[k - 1]
            c0[k, l] = -(s - 1) * beta ** 2 / a * N[k] / N[k - 1]
            if k >= 2:
                c2[k, l] = 2 * (k - 1) * (k + beta - 1) * s / a * N[k] / N[k - 2]
    return c1, c0, c2, seed


class _Workspace:
    """Reusable flat buffers, one per name: the transform's big temporaries are written in place.

    Fresh multi-MB tensors cost page faults with glibc's malloc, which dominated the run time;
    the transform keeps one workspace per thread (a few tens of MB at the default slot budget)
    and reuses it across calls.
    """

    def __init__(self):
        self._bufs: Dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        n = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            buf = self._bufs[name] = torch.empty(n, dtype=dtype)
        return buf[:n].view(shape)

    def reserve(self, name: str, shape: tuple, dtype: torch.dtype) -> None:
        self.get(name, shape, dtype)


_THREAD = threading.local()


def _thread_workspace() -> _Workspace:
    ws = getattr(_THREAD, "ws", None)
    if ws is None:
        ws = _THREAD.ws = _Workspace()
    return ws


def _radial_table(u: torch.Tensor, n_max: int, lmax: int, kind: str,
                  dtype: torch.dtype = torch.float64, norm_sq: bool = False,
                  ws: Optional[_Workspace] = None):
    """``N_nl P_k^{(0,l+1/2)}(2u-1)`` (no ``x^l``) for ``u = x^2 [S]`` float64.

    Returns ``table [k_max+1, L+1, S]`` in ``dtype`` (entry ``[k, l]`` is n = l + 2k; entries with
    n > n_max are left unset) and, with ``norm_sq``, ``sum_k R_lk^2 [L+1, S]``
    (float64) over the valid k, else None. The three-term recurrence runs in float64 on
    ``[L+1, S]`` blocks (vectorised over degrees); it is stable on [-1, 1]. The tensors returned
    are views into ``ws``.
    """
    ws = ws or _Workspace()
    c1, c0, c2, seed = _recurrence(n_max, lmax, kind)
    k_max, L1, S = n_max // 2, lmax + 1, u.shape[0]
    f64 = torch.float64
    t = ws.get("t", (L1, S), f64)
    torch.mul(u, 2.0, out=t[0]).sub_(1.0)
    t[1:].copy_(t[0].expand(L1 - 1, S))
    rec = ws.get("rec", (3, L1, S), f64)                 # rotating P_k, P_{k-1}, P_{k-2}
    table = ws.get("radial", (k_max + 1, L1, S), dtype)
    prev2, prev = None, seed.expand(L1, S)
    table[0].copy_(prev)
    sq = None
    if norm_sq:
        sq = ws.get("sq", (L1, S), f64)
        sq.copy_((seed * seed).expand(L1, S))
    for k in range(1, k_max + 1):
        # only degrees with n = l + 2k <= n_max (a prefix of the rows) are needed from here on;
        # rows past it stay unset in `table`
        v = min(L1, n_max - 2 * k + 1)
        cur = rec[k % 3, :v]
        torch.mul(t[:v], c1[k, :v], out=cur).add_(c0[k, :v]).mul_(prev[:v])
        if k >= 2:
            cur.addcmul_(prev2[:v], c2[k, :v].expand(v, S), value=-1.0)
        table[k, :v].copy_(cur)
        if norm_sq:
            sq[:v].addcmul_(cur, cur)
        prev2, prev = prev, cur
    return table, sq


def zernike_radial(n_max: int, lmax: int, x: torch.Tensor, kind: str = "orthonormal",
                   as_dict: bool = True):
    """Radial 3D Zernike functions ``R_nl(x)`` for ``x = r / r_max`` in [0, 1].

    ``x [...]`` -> ``{l: [..., n_radial(l)]}`` (index k means ``n = l + 2k``), or with
    ``as_dict=False`` one ``[..., K_r]`` tensor with columns in (l, k) order. Evaluated in float64
    and returned in ``x``'s dtype (float32 for integer input). Outside [0, 1] the polynomials are
    evaluated as they are (no clamping).
    """
    _check_sizes(lmax, n_max)
    x = torch.as_tensor(x)
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    x64 = x.detach().cpu().to(torch.float64).reshape(-1)
    table, _ = _radial_table(x64 * x64, n_max, lmax, kind)                    # [k, l, S]
    cols = []
    for l in range(lmax + 1):
        cols.append((table[:n_radial(l, n_max), l] * x64 ** l).T)             # [S, n_r(l)]
    shape = tuple(x.shape)
    if not as_dict:
        return torch.cat(cols, dim=1).reshape(*shape, -1).to(out_dtype)
    return {l: c.reshape(*shape, -1).to(out_dtype) for l, c in enumerate(cols)}


# ----------------------------------------------------------------------------------------------
# angular part: cheap solid harmonics and their map to e3nn's basis
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _solid_coefs(lmax: int):
    """Per degree l >= 1: ``a [2l-1, 1]`` for rows |m| <= l-1 and ``b [2l-3, 1]`` for |m| <= l-2."""
    out = {}
    for l in range(1, lmax + 1):
        m1 = torch.arange(-(l - 1), l, dtype=torch.float64).abs()
        m2 = torch.arange(-(l - 2), max(l - 1, -(l - 2)), dtype=torch.float64).abs()   # empty for l = 1
        out[l] = ((2 * l - 1) / (l - m1))[:, None], ((l + m2 - 1) / (l - m2))[:, None]
    return out


def _solid_harmonics_rows(xyz: torch.Tensor, lmax: int, scale: Optional[torch.Tensor] = None,
                          ws: Optional[_Workspace] = None) -> torch.Tensor:
    """Unnormalised real solid harmonics ``[(L+1)^2, S]`` of ``xyz [3, S]`` (times ``scale [S]``).

    Degree l, order m = -l..l: ``Q_l^|m|(z, r^2) Im/Re (x+iy)^|m|`` (Im for m < 0). For fixed m the
    associated-Legendre recurrence ``(l-|m|) Y_l^m = (2l-1) z Y_{l-1}^m - (l+|m|-1) r^2 Y_{l-2}^m``
    holds for the products as well, so each degree is a few row-block operations; the edge rows
    ``Y_l^{+-l} = Re/Im (x+iy)^l`` follow from those of degree l-1. Each degree spans the same
    polynomials as e3nn's ``|x|^l Y_l(x/|x|)``; :func:`_to_e3nn` holds the change of basis.
    Returns a view into ``ws``.
    """
    ws = ws or _Workspace()
    x, y, z = xyz[0], xyz[1], xyz[2]
    S, dtype = xyz.shape[1], xyz.dtype
    Y = ws.get("ylm", ((lmax + 1) ** 2, S), dtype)
    if scale is None:
        Y[0] = 1.0
    else:
        Y[0].copy_(scale)
    if lmax == 0:
        return Y
    r2 = ws.get("r2", (S,), dtype)
    torch.mul(x, x, out=r2).addcmul_(y, y).addcmul_(z, z)
    tmp = ws.get("tmp", (max(2 * lmax - 3, 1), S), dtype)
    coefs = _solid_coefs(lmax)
    for l in range(1, lmax + 1):
        a, b = coefs[l]
        Yl, Yp = Y[l * l:(l + 1) ** 2], Y[(l - 1) ** 2:l * l]
        torch.mul(Yp, z, out=Yl[1:2 * l]).mul_(a.to(dtype))
        if l >= 2:
            Ypp = torch.mul(Y[(l - 2) ** 2:(l - 1) ** 2], r2, out=tmp[:2 * l - 3])
            Yl[2:2 * l - 1].addcmul_(Ypp, b.to(dtype).expand_as(Ypp), value=-1.0)
        # (x+iy)^l = (x+iy)^(l-1) (x+iy): cos row (m = l) and sin row (m = -l)
        if l == 1:
            torch.mul(Y[0], y, out=Yl[0])
            torch.mul(Y[0], x, out=Yl[2])
        else:
            c_prev, s_prev = Yp[2 * l - 2], Yp[0]
            torch.mul(c_prev, x, out=Yl[2 * l]).addcmul_(s_prev, y, value=-1.0)
            torch.mul(s_prev, x, out=Yl[0]).addcmul_(c_prev, y)
    return Y


@functools.lru_cache(maxsize=None)
def _to_e3nn_64(lmax: int) -> tuple:
    """Per degree, ``A_l [2l+1, 2l+1]`` with ``|x|^l Y_l^{e3nn}(x) = A_l @ S_l(x)``, by a float64
    least-squares fit on random points (exact: both sides are bases of the same polynomials)."""
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(64 + 8 * (lmax + 1) ** 2, 3, dtype=torch.float64, generator=g)
    mine = _solid_harmonics_rows(pts.T.contiguous(), lmax)                  # [(L+1)^2, S]
    ref = o3.spherical_harmonics(list(range(lmax + 1)), pts, normalize=False,
                                 normalization="integral").T                # [(L+1)^2, S]
    mats = []
    for l in range(lmax + 1):
        sl = slice(l * l, (l + 1) ** 2)
        # numpy's LAPACK solve gives the same bits in every process (torch's varied in the last
        # bit from run to run, and so did every transform's output)
        A = torch.from_numpy(np.linalg.lstsq(mine[sl].T.numpy(), ref[sl].T.numpy(), rcond=None)[0].T.copy())
        err = (A @ mine[sl] - ref[sl]).abs().max() / ref[sl].abs().max()
        if err > 1e-9:
            raise RuntimeError(f"solid harmonics of degree {l} do not match e3nn (rel. error {err:.1e})")
        mats.append(A)
    return tuple(mats)


@functools.lru_cache(maxsize=None)
def _to_e3nn_rows(lmax: int) -> tuple:
    """The ``A_l`` of :func:`_to_e3nn_64` as compressed rows, degree after degree:
    ``(ptr [(L+1)^2 + 1], col, val)`` (int64, int64, float64; row m of degree l holds the
    entries ``ptr[l^2 + m]:ptr[l^2 + m + 1]``). Entries below 1e-12 of their matrix's largest
    are the fit's round-off of exact zeros; about a quarter of the entries are left."""
    counts, cols, vals = [], [], []
    for A in _to_e3nn_64(lmax):
        keep = A.abs() > 1e-12 * A.abs().max()
        r, c = torch.nonzero(keep, as_tuple=True)          # row-major order
        counts.append(keep.sum(1))
        cols.append(c)
        vals.append(A[r, c])
    ptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(torch.cat(counts), 0)])
    return ptr, torch.cat(cols).to(torch.int64), torch.cat(vals).to(torch.float64)


def _to_e3nn(lmax: int, dtype: torch.dtype) -> list:
    return [A.to(dtype) for A in _to_e3nn_64(lmax)]


# ----------------------------------------------------------------------------------------------
# forward transform
# ----------------------------------------------------------------------------------------------
def _validate(points, channels, offsets, weights, n_channels):
    """Shapes, dtypes and values of the inputs; returns them as CPU tensors and the radii
    ``r2 [P]`` (squared, float64). Cheap: no copies of the points (large fresh tensors are slow here)."""
    points = torch.as_tensor(points).detach().cpu()
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [P, 3], got shape {tuple(points.shape)}")
    if not points.is_floating_point():
        points = points.to(torch.float64)
    P = points.shape[0]
    # squared radii in float64, column by column (a reduction over a dim of 3 is slow)
    # (copy=True: squaring in place must never touch the caller's float64 points)
    r2 = points[:, 0].to(torch.float64, copy=True).square_()
    for i in (1, 2):
        r2.add_(points[:, i].to(torch.float64, copy=True).square_())
    if not math.isfinite(float(r2.sum())):                  # one reduction, no temporary
        bad = int((~torch.isfinite(points).all(1)).sum())
        raise ValueError(f"{bad} point(s) have NaN or infinite coordinates" if bad else
                         "point coordinates too large: their norm overflows")
    if offsets is None:
        offsets = torch.tensor([0, P], dtype=torch.long)
    offsets = torch.as_tensor(offsets)
    if offsets.ndim != 1 or offsets.numel() < 1 or offsets.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"offsets must be a 1-D integer tensor [B+1], got {offsets.dtype} {tuple(offsets.shape)}")
    offsets = offsets.to(torch.long).cpu()
    if int(offsets[0]) != 0 or int(offsets[-1]) != P or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"offsets must start at 0, be non-decreasing and end at P={P}; "
                         f"got first={int(offsets[0])}, last={int(offsets[-1])}")
    if channels is None:
        if n_channels != 1:
            raise ValueError(f"channels=None means one channel, but n_channels={n_channels}")
        channels = torch.zeros(P, dtype=torch.long)
    channels = torch.as_tensor(channels)
    if channels.shape != (P,) or channels.is_floating_point() or channels.dtype == torch.bool:
        raise ValueError(f"channels must be an integer tensor [P={P}], got {channels.dtype} {tuple(channels.shape)}")
    channels = channels.cpu()
    if P and (int(channels.min()) < 0 or int(channels.max()) >= n_channels):
        raise ValueError(f"channels must lie in [0, {n_channels}), got [{int(channels.min())}, {int(channels.max())}]")
    if weights is not None:
        weights = torch.as_tensor(weights).detach().cpu()
        if weights.shape != (P,):
            raise ValueError(f"weights must be [P={P}], got shape {tuple(weights.shape)}")
        if not bool(torch.isfinite(weights).all()):
            raise ValueError("weights contain NaN or infinite values")
    return points, channels, offsets, weights, r2


def _batches(sizes: torch.Tensor, slot_budget: int):
    """Split groups (sorted by size, descending) into consecutive batches of at most
    ``slot_budget`` padded slots: yields ``(start, stop, M)``."""
    sizes = sizes.tolist()
    i, n = 0, len(sizes)
    while i < n:
        M = sizes[i]
        stop = min(n, i + max(1, slot_budget // M))
        yield i, stop, M
        i = stop


def _accumulate_torch(points, weights, order, gstart, sizes, *, lmax, n_max, r_max, radial, normalization,
                      dtype, slot_budget):
    """The per-group point sums ``[G, K]`` in ``dtype`` (group g's block of degree l is
    ``[n_r(l), 2l+1]`` in our solid-harmonic basis, degrees in order) with torch operations:
    groups of similar size padded into ``[G, M]`` batches of at most ``slot_budget`` slots, one
    batched matmul per degree. The float64 path, the path taken without a C compiler, and the
    kernel's reference in the tests."""
    nr = [n_radial(l, n_max) for l in range(lmax + 1)]
    n_groups = sizes.numel()
    K = sum(n * (2 * l + 1) for l, n in enumerate(nr))
    acc = torch.empty(n_groups, K, dtype=dtype)          # per group, degree-major, our SH basis
    batches = list(_batches(sizes, slot_budget))
    ws = _thread_workspace()
    S_max = max((g1 - g0) * M for g0, g1, M in batches)
    # reserve the largest batch up front: a buffer that grows mid-call would fault in again
    ws.reserve("radial", (n_max // 2 + 1, lmax + 1, S_max), dtype)
    ws.reserve("rec", (3, lmax + 1, S_max), torch.float64)
    ws.reserve("ylm", ((lmax + 1) ** 2, S_max), dtype)
    f64 = torch.float64
    for g0, g1, M in batches:
        G, S = g1 - g0, (g1 - g0) * M
        j = torch.arange(M)
        valid = torch.lt(j, sizes[g0:g1, None], out=ws.get("valid", (G, M), torch.bool))
        slot = torch.add(gstart[g0:g1, None], j, out=ws.get("slot", (G, M), torch.long))
        slot.masked_fill_(~valid, 0)                     # padding: the first kept point, weight 0
        src = torch.index_select(order, 0, slot.view(-1), out=ws.get("src", (S,), torch.long))
        pts = torch.index_select(points, 0, src, out=ws.get("pts", (S, 3), points.dtype))
        xyz = ws.get("xyz64", (3, S), f64)
        xyz.copy_(pts.T).mul_(1.0 / float(r_max))        # unit ball, float64 for the radial part
        u = torch.mul(xyz[0], xyz[0], out=ws.get("u", (S,), f64))
        u.addcmul_(xyz[1], xyz[1]).addcmul_(xyz[2], xyz[2])
        rad, sq = _radial_table(u, n_max, lmax, radial, dtype=dtype,
                                norm_sq=normalization == "square", ws=ws)    # [k, l, S]
        # per-slot factor (weight, padding mask, square normalisation) rides on the solid
        # harmonics' seeds, which is cheaper than scaling the [K_r, S] radial table
        scale = ws.get("w", (S,), f64)
        scale.copy_(valid.view(-1))
        if weights is not None:
            scale.mul_(weights.index_select(0, src))
        if normalization == "square":
            # |basis|^2 = sum_l (2l+1)/(4 pi) x^2l sum_k R_lk^2 (addition theorem): no basis needed
            norm2 = ws.get("norm2", (S,), f64)
            norm2.copy_(sq[lmax]).mul_((2 * lmax + 1) / (4 * math.pi))
            for l in range(lmax - 1, -1, -1):                 # Horner in u over the degrees
                norm2.mul_(u).add_(sq[l], alpha=(2 * l + 1) / (4 * math.pi))
            scale.div_(norm2)
        xyz_c = ws.get("xyz", (3, S), dtype)
        xyz_c.copy_(xyz)
        scale_c = ws.get("scale", (S,), dtype)
        scale_c.copy_(scale)
        ylm = _solid_harmonics_rows(xyz_c, lmax, scale_c, ws=ws)            # [(L+1)^2, S]
        col = 0
        for l in range(lmax + 1):
            d = 2 * l + 1
            a = rad[:nr[l], l].view(nr[l], G, M).permute(1, 0, 2)              # [G, n_r, M]
            b = ylm[l * l:l * l + d].view(d, G, M).permute(1, 2, 0)           # [G, M, d]
            acc[g0:g1, col:col + nr[l] * d] = torch.bmm(a, b).view(G, -1)
            col += nr[l] * d
    return acc


def zernike_transform(points: torch.Tensor, channels: Optional[torch.Tensor] = None,
                      offsets: Optional[torch.Tensor] = None, *, n_channels: int = 1,
                      lmax: int, n_max: int, r_max: float, weights: Optional[torch.Tensor] = None,
                      normalization: Optional[str] = None, radial: str = "orthonormal",
                      outside: str = "drop", dtype: torch.dtype = torch.float32,
                      slot_budget: int = 32768) -> torch.Tensor:
    """Zernike coefficients of a ragged batch of point clouds.

    Args:
        points: ``[P, 3]`` coordinates, centred on each cloud's origin (same unit as ``r_max``).
        channels: ``[P]`` integer channel of each point (``None``: one channel).
        offsets: ``[B+1]`` integer; cloud b is ``points[offsets[b]:offsets[b+1]]``
            (``None``: a single cloud). Empty clouds give zero rows.
        weights: ``[P]`` optional per-point weights (default 1).
        normalization: ``None`` or ``"square"`` (the authors': each point's basis vector over all
            (n, l, m) is divided by its squared norm before summing).
        radial: ``"orthonormal"`` (default) or ``"authors"`` (see module docstring).
        outside: points with ``r > r_max`` are ignored (``"drop"``, the default) or raise
            (``"error"``).
        dtype: float32 (default) or float64 for the computation and the result.
        slot_budget: padded points processed at once; bounds the per-thread workspace (about
            0.8 kB per slot at L = 6, n_max = 20: ~26 MB at the default), which is kept between
            calls because fresh large buffers are slow to fault in.

    Returns:
        ``[B, dim]`` with ``dim = zernike_irreps(n_channels, lmax, n_max).dim``, e3nn order.

    Points at the origin contribute only to l = 0 (their direction is undefined; ``R_nl(0) = 0``
    for l > 0 and the solid harmonics used here vanish there).
    """
    _check_sizes(lmax, n_max)
    if normalization not in (None, "square"):
        raise ValueError(f"normalization must be None or 'square', got {normalization!r}")
    if outside not in ("drop", "error"):
        raise ValueError(f"outside must be 'drop' or 'error', got {outside!r}")
    if radial not in _KINDS:
        raise ValueError(f"radial must be one of {_KINDS}, got {radial!r}")
    if not r_max > 0:
        raise ValueError(f"r_max must be > 0, got {r_max}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    irreps = zernike_irreps(n_channels, lmax, n_max)
    points, channels, offsets, weights, r2 = _validate(points, channels, offsets, weights, n_channels)
    B, P, C = offsets.numel() - 1, points.shape[0], n_channels
    nr = [n_radial(l, n_max) for l in range(lmax + 1)]
    out = torch.zeros(B, irreps.dim, dtype=dtype)
    if P == 0 or B == 0:
        return out
    inside = r2 <= float(r_max) ** 2
    n_in = int(inside.sum())
    if n_in < P and outside == "error":
        raise ValueError(f"{P - n_in} point(s) lie beyond r_max={r_max} "
                         f"(largest radius {math.sqrt(float(r2.max())):.6g})")
    if n_in == 0:
        return out

    # group = (channel, cloud), channel-major; dropped points get the sentinel channel C.
    # The input is ordered by cloud, so a stable sort by channel alone (small integer keys:
    # several times faster than sorting the full key) lists every group's points contiguously.
    chan = channels.to(torch.uint8 if C < 255 else torch.int32)
    if n_in < P:
        chan = chan.masked_fill(~inside, C)
    order = torch.argsort(chan, stable=True)             # order[:n_in]: the points kept
    key = torch.repeat_interleave(torch.arange(B), offsets[1:] - offsets[:-1])
    key.add_(chan, alpha=B)
    counts = torch.bincount(key, minlength=B * (C + 1))[: B * C]
    sizes, gorder = torch.sort(counts, descending=True, stable=True)
    n_groups = int((sizes > 0).sum())
    sizes, gorder = sizes[:n_groups], gorder[:n_groups]
    gstart = (torch.cumsum(counts, 0) - counts)[gorder]
    cloud_of, chan_of = gorder % B, gorder // B
    if dtype == torch.float32 and zernike_kernel.available():
        zernike_kernel.transform_into(out, points, weights, order, gstart, sizes, cloud_of, chan_of, lmax=lmax,
                                      n_max=n_max, r_max=r_max, recurrence=_recurrence(n_max, lmax, radial),
                                      solid=_solid_coefs(lmax),
                                      to_e3nn=_to_e3nn_rows(lmax), block_offsets=[sl.start for sl in irreps.slices()],
                                      square=normalization == "square")
        return out
    acc = _accumulate_torch(points, weights, order, gstart, sizes, lmax=lmax, n_max=n_max, r_max=r_max,
                            radial=radial, normalization=normalization, dtype=dtype, slot_budget=slot_budget)

    # our solid-harmonic basis -> e3nn's, once per group and degree (not per point), written
    # straight into the flat layout: degree block [B, C, n_r(l) * (2l+1)] (mul = c * n_r + k)
    A_l = _to_e3nn(lmax, dtype)
    col = 0
    for l, sl in enumerate(irreps.slices()):
        width = nr[l] * (2 * l + 1)
        blk = acc[:, col:col + width].view(n_groups, nr[l], 2 * l + 1) @ A_l[l].T
        out[:, sl].view(B, C, width).index_put_((cloud_of, chan_of), blk.reshape(n_groups, width))
        col += width
    return out


# ----------------------------------------------------------------------------------------------
# inverse transform (pictures)
# ----------------------------------------------------------------------------------------------
def cubic_grid(n: int, r_max: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Cell centres of an ``n x n x n`` grid over ``[-r_max, r_max]^3``: ``[n^3, 3]`` (x slowest)."""
    c = (torch.arange(n, dtype=dtype) + 0.5) / n * 2 * r_max - r_max
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), dim=-1).reshape(-1, 3)


def zernike_basis(points: torch.Tensor, lmax: int, n_max: int, r_max: float,
                  radial: str = "orthonormal") -> torch.Tensor:
    """Basis functions ``Z_nlm(p / r_max)`` at ``points [G, 3]`` -> ``[G, K]`` (float64), columns
    per degree ``[n_r(l), 2l+1]`` flattened; zero outside the ball. Reference-speed (e3nn SH)."""
    _check_sizes(lmax, n_max)
    pos = torch.as_tensor(points).to(torch.float64) / float(r_max)
    x = pos.norm(dim=1)
    R = zernike_radial(n_max, lmax, x.clamp(max=1.0), kind=radial)
    Y = real_spherical_harmonics(lmax, pos)                                 # direction only
    cols = []
    for l in range(lmax + 1):
        cols.append((R[l][:, :, None] * Y[:, l * l:(l + 1) ** 2][:, None, :]).flatten(1))
    basis = torch.cat(cols, dim=1)
    return basis * (x <= 1.0)[:, None]


def inverse_zernike_transform(coeffs: torch.Tensor, *, n_channels: int, lmax: int, n_max: int,
                              r_max: float, grid_points: torch.Tensor | int,
                              radial: str = "orthonormal", chunk: int = 8192) -> torch.Tensor:
    """``sum_{nlm} f[c,n,l,m] Z_nlm(p / r_max)`` on ``grid_points``.

    Args:
        coeffs: ``[B, dim]`` in the layout of :func:`zernike_transform`.
        grid_points: ``[G, 3]`` positions, or an int ``n`` for :func:`cubic_grid` ``(n, r_max)``.
        chunk: grid points evaluated at once (the basis is ``[chunk, K]`` float64).

    Returns ``[B, n_channels, G]`` in ``coeffs``' dtype; zero outside the ball. With the
    orthonormal radial basis and a density's coefficients, this is its band-limited projection.
    """
    irreps = zernike_irreps(n_channels, lmax, n_max)
    if coeffs.ndim != 2 or coeffs.shape[1] != irreps.dim:
        raise ValueError(f"coeffs must be [B, {irreps.dim}] for irreps {irreps}, got {tuple(coeffs.shape)}")
    if isinstance(grid_points, int):
        grid_points = cubic_grid(grid_points, r_max)
    grid_points = torch.as_tensor(grid_points)
    B, C = coeffs.shape[0], n_channels
    nr = [n_radial(l, n_max) for l in range(lmax + 1)]
    per_group, col = [], 0
    for l in range(lmax + 1):                                                 # flat -> [B, C, K]
        width = nr[l] * (2 * l + 1)
        per_group.append(coeffs[:, col:col + C * width].reshape(B, C, width))
        col += C * width
    per_group = torch.cat(per_group, dim=2).to(torch.float64)
    out = torch.empty(B, C, grid_points.shape[0], dtype=coeffs.dtype)
    for start in range(0, grid_points.shape[0], chunk):                       # bounded memory
        basis = zernike_basis(grid_points[start:start + chunk], lmax, n_max, r_max, radial)  # [g, K]
        out[:, :, start:start + chunk] = per_group @ basis.T
    return out
