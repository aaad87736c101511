"""Real spherical harmonics and Clebsch-Gordan coefficients (e3nn conventions)."""
from __future__ import annotations

import functools

import torch
from e3nn import o3


def real_spherical_harmonics(lmax: int, xyz: torch.Tensor, normalization: str = "integral") -> torch.Tensor:
    """Real SH of the directions ``xyz [..., 3]`` for l = 0..lmax -> ``[..., (lmax+1)^2]``.

    ``normalization="integral"`` makes them orthonormal on the unit sphere (the H-(V)AE
    convention). Zero vectors give the l = 0 value and zeros for l > 0 after e3nn's
    normalisation; callers that care (the ZFT) handle the origin themselves.
    """
    return o3.spherical_harmonics(list(range(lmax + 1)), xyz, normalize=True, normalization=normalization)


@functools.lru_cache(maxsize=None)
def _clebsch_gordan_cpu64(l1: int, l2: int, l3: int) -> torch.Tensor:
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64)


def clebsch_gordan(l1: int, l2: int, l3: int, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """e3nn's real coupling tensor ``[2l1+1, 2l2+1, 2l3+1]`` (Frobenius norm 1), cached."""
    return _clebsch_gordan_cpu64(l1, l2, l3).to(dtype=dtype, device=device)
