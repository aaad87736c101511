"""Rotations and their action on steerable tensors (thin over e3nn)."""
from __future__ import annotations

import math
from functools import lru_cache

import torch
from holovae._e3nn import o3

from .harmonics import real_spherical_harmonics


def random_rotation(n: int | None = None, *, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Haar-uniform rotation matrices ``[n, 3, 3]`` (or ``[3, 3]`` for ``n=None``).

    Uses a normalised Gaussian quaternion, which is Haar-uniform and accepts a generator
    (e3nn's ``rand_matrix`` does not).
    """
    shape = (1 if n is None else n, 4)
    q = torch.randn(shape, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    R = o3.quaternion_to_matrix(q).to(dtype)
    return R[0] if n is None else R


def _fibonacci_sphere(n: int) -> torch.Tensor:
    """``n`` well-spread unit vectors ``[n, 3]`` (float64)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (3 - math.sqrt(5)) * i
    r = torch.sqrt(1 - z * z)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1)


@lru_cache(maxsize=None)
def _sampling(lmax: int, dtype: torch.dtype, device: torch.device):
    """Sample points ``P [n, 3]`` and, per degree, the pseudo-inverse ``A_l [2l+1, n]`` of
    ``Y_l(P) [n, 2l+1]``, so that ``D_l(R)^T = A_l @ Y_l(R P)``."""
    points = _fibonacci_sphere(4 * (2 * lmax + 1))
    Y = real_spherical_harmonics(lmax, points)
    pinvs, start = [], 0
    for l in range(lmax + 1):
        pinvs.append(torch.linalg.pinv(Y[:, start:start + 2 * l + 1]).to(device, dtype))
        start += 2 * l + 1
    return points.to(device, dtype), pinvs


def wigner_D_all(lmax: int, R: torch.Tensor) -> list[torch.Tensor]:
    """Real Wigner-D matrices of degrees ``0..lmax`` in e3nn's basis:
    ``R [..., 3, 3]`` -> ``[D_0, ..., D_lmax]``, ``D_l [..., 2l+1, 2l+1]``.

    Convention: ``Y_l(R x) = D_l(R) @ Y_l(x)`` for e3nn's real spherical harmonics. Computed
    from that identity at a fixed set of points (one harmonics evaluation and one small matmul
    per degree) instead of e3nn's Euler angles and matrix exponentials. Two reasons: it holds
    for e3nn's harmonics to ~1e-15 in float64, whereas e3nn's ``D_from_matrix`` and its
    harmonics disagree by ~1e-6 at l = 10, so "rotate the points" and "rotate the
    coefficients" agree to float64 precision; and it is ~2x faster for a batch
    (``benchmarks/bench_wigner.py``). Differentiable in ``R``.
    """
    points, pinvs = _sampling(lmax, R.dtype, R.device)
    Y = real_spherical_harmonics(lmax, points @ R.transpose(-1, -2))
    out, start = [], 0
    for l in range(lmax + 1):
        out.append((pinvs[l] @ Y[..., start:start + 2 * l + 1]).transpose(-1, -2))
        start += 2 * l + 1
    return out


def wigner_D(l: int, R: torch.Tensor) -> torch.Tensor:
    """Real Wigner-D matrix of degree ``l`` in e3nn's basis: ``R [..., 3, 3]`` -> ``[..., 2l+1, 2l+1]``
    (see :func:`wigner_D_all`)."""
    return wigner_D_all(l, R)[l]


def irreps_D(irreps, R: torch.Tensor) -> torch.Tensor:
    """Block-diagonal Wigner-D of a flat steerable tensor: ``R [..., 3, 3]`` -> ``[..., dim, dim]``."""
    irreps = o3.Irreps(irreps)
    Ds = wigner_D_all(max(ir.l for _, ir in irreps), R)
    return torch.block_diag(*[Ds[ir.l] for mul, ir in irreps for _ in range(mul)]) if R.ndim == 2 else \
        _batched_block_diag([Ds[ir.l] for mul, ir in irreps for _ in range(mul)])


def _batched_block_diag(blocks: list[torch.Tensor]) -> torch.Tensor:
    dim = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(*blocks[0].shape[:-2], dim, dim)
    i = 0
    for b in blocks:
        d = b.shape[-1]
        out[..., i:i + d, i:i + d] = b
        i += d
    return out


def rotate_flat(x: torch.Tensor, irreps, R: torch.Tensor) -> torch.Tensor:
    """Rotate flat steerable tensors ``x [N, dim]`` by ``R [3, 3]`` (or one ``R [N, 3, 3]`` per row).

    Computed degree by degree, so the cost is ``sum_l C_l (2l+1)^2`` per row, not ``dim^2``.
    """
    irreps = o3.Irreps(irreps)
    R = R.to(x.dtype)
    Ds = wigner_D_all(max(ir.l for _, ir in irreps), R)
    parts = []
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        D = Ds[ir.l]
        block = x[:, sl].reshape(x.shape[0], mul, 2 * ir.l + 1)
        if D.ndim == 2:
            parts.append((block @ D.T).reshape(x.shape[0], -1))
        else:
            parts.append(torch.einsum("nij,ncj->nci", D, block).reshape(x.shape[0], -1))
    return torch.cat(parts, dim=1)   # not in-place writes: keeps it differentiable
