"""Rotations and their action on steerable tensors (thin over e3nn)."""
from __future__ import annotations

import torch
from e3nn import o3


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


def wigner_D(l: int, R: torch.Tensor) -> torch.Tensor:
    """Real Wigner-D matrix of degree ``l`` in e3nn's basis: ``R [..., 3, 3]`` -> ``[..., 2l+1, 2l+1]``.

    Convention: ``Y_l(R x) = wigner_D(l, R) @ Y_l(x)`` for e3nn's real spherical harmonics.
    """
    return o3.Irrep(l, 1).D_from_matrix(R)


def irreps_D(irreps, R: torch.Tensor) -> torch.Tensor:
    """Block-diagonal Wigner-D of a flat steerable tensor: ``R [..., 3, 3]`` -> ``[..., dim, dim]``."""
    return o3.Irreps(irreps).D_from_matrix(R)


def rotate_flat(x: torch.Tensor, irreps, R: torch.Tensor) -> torch.Tensor:
    """Rotate flat steerable tensors ``x [N, dim]`` by ``R [3, 3]`` (or one ``R [N, 3, 3]`` per row).

    Computed degree by degree, so the cost is ``sum_l C_l (2l+1)^2`` per row, not ``dim^2``.
    """
    irreps = o3.Irreps(irreps)
    out = torch.empty_like(x)
    R = R.to(x.dtype)
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        D = wigner_D(ir.l, R).to(x.dtype)
        block = x[:, sl].reshape(x.shape[0], mul, 2 * ir.l + 1)
        if D.ndim == 2:
            out[:, sl] = (block @ D.T).reshape(x.shape[0], -1)
        else:
            out[:, sl] = torch.einsum("nij,ncj->nci", D, block).reshape(x.shape[0], -1)
    return out
