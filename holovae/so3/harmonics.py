"""Real spherical harmonics and Clebsch-Gordan coefficients (e3nn conventions)."""
from __future__ import annotations

import functools
import math

import torch
from holovae._e3nn import o3


def real_spherical_harmonics(lmax: int, xyz: torch.Tensor, normalization: str = "integral") -> torch.Tensor:
    """Real SH of the directions ``xyz [..., 3]`` for l = 0..lmax -> ``[..., (lmax+1)^2]``.

    ``normalization="integral"`` makes them orthonormal on the unit sphere (the H-(V)AE
    convention). Zero vectors give the l = 0 value and zeros for l > 0 after e3nn's
    normalisation; callers that care (the ZFT) handle the origin themselves.
    """
    base = o3.spherical_harmonics(list(range(min(lmax, _E3NN_POLYNOMIAL_LMAX) + 1)), xyz, normalize=True,
                                  normalization=normalization)
    if lmax <= _E3NN_POLYNOMIAL_LMAX:
        return base
    # e3nn's closed forms stop at l = 12 (Shrec17 needs 14). Continue as e3nn built them:
    # Y_l is the l-component of Y_1 (x) Y_{l-1}, rescaled to the normalisation's norm. e3nn's
    # angular path (spherical_harmonics_alpha_beta) has no limit but builds its Legendre
    # polynomials in sympy, 11 s per process at l = 14; this costs one small einsum per degree.
    blocks = [base]
    y1, prev = base[..., 1:4], base[..., _E3NN_POLYNOMIAL_LMAX ** 2:]
    for l in range(_E3NN_POLYNOMIAL_LMAX + 1, lmax + 1):
        cg = clebsch_gordan(1, l - 1, l, dtype=xyz.dtype, device=xyz.device)
        prev = _raise_degree_scale(l, normalization) * torch.einsum("ijk,...i,...j->...k", cg, y1, prev)
        blocks.append(prev)
    return torch.cat(blocks, dim=-1)


@functools.lru_cache(maxsize=None)
def _raise_degree_scale(l: int, normalization: str) -> float:
    """The constant that gives the l-component of ``Y_1 (x) Y_{l-1}`` the norm of ``Y_l`` (the
    component's norm is the same at every unit vector, since it is rotation invariant)."""
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    y = real_spherical_harmonics(l - 1, z, normalization)
    raw = torch.einsum("ijk,i,j->k", _clebsch_gordan_cpu64(1, l - 1, l), y[1:4], y[(l - 1) ** 2:])
    target = {"integral": math.sqrt((2 * l + 1) / (4 * math.pi)), "component": math.sqrt(2 * l + 1),
              "norm": 1.0}[normalization]
    return target / float(raw.norm())


_E3NN_POLYNOMIAL_LMAX = 12


@functools.lru_cache(maxsize=None)
def _clebsch_gordan_cpu64(l1: int, l2: int, l3: int) -> torch.Tensor:
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64)


def clebsch_gordan(l1: int, l2: int, l3: int, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """e3nn's real coupling tensor ``[2l1+1, 2l2+1, 2l3+1]`` (Frobenius norm 1), cached."""
    return _clebsch_gordan_cpu64(l1, l2, l3).to(dtype=dtype, device=device)
