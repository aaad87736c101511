"""Orthonormal frames from two learned vectors, in Cartesian and e3nn l = 1 coordinates."""
from __future__ import annotations

import functools

import torch
from holovae._e3nn import o3


@functools.lru_cache(maxsize=None)
def l1_basis() -> torch.Tensor:
    """``M [3, 3]``, orthogonal, with ``v_e3nn = M @ v_xyz`` for degree-1 features.

    Read off e3nn itself rather than assumed, because e3nn has changed the order of its l = 1
    components between releases ((y, z, x) before 0.6, (x, y, z) since). e3nn's 'component'
    harmonics give a unit vector length sqrt(3); divided out here, so that the frame reaches
    the decoder as unit vectors, as the authors feed it (a sqrt(3) there scaled every decoder
    input and doubled the untrained model's reconstruction error; docs/fidelity.md#architecture).
    """
    Y = o3.spherical_harmonics(1, torch.eye(3, dtype=torch.float64), normalize=True, normalization="component")
    return (Y / 3 ** 0.5).T.contiguous()


def vectors_to_cartesian(v: torch.Tensor) -> torch.Tensor:
    """Degree-1 features in e3nn components ``[..., 3]`` -> Cartesian (x, y, z)."""
    return v @ l1_basis().to(v)


def cartesian_to_vectors(v: torch.Tensor) -> torch.Tensor:
    """Cartesian ``[..., 3]`` -> degree-1 features in e3nn components."""
    return v @ l1_basis().to(v).T


def gram_schmidt(v1: torch.Tensor, v2: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Right-handed orthonormal frame from Cartesian ``v1, v2 [B, 3]`` -> ``[B, 3, 3]``, rows
    x̂ = v1/|v1|, ŷ = normalise(v2 - <x̂, v2> x̂), ẑ = x̂ × ŷ."""
    x = v1 / (v1.norm(dim=-1, keepdim=True) + eps)
    y = v2 - (x * v2).sum(-1, keepdim=True) * x
    y = y / (y.norm(dim=-1, keepdim=True) + eps)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], dim=1)


def frame_to_matrix(frame: torch.Tensor) -> torch.Tensor:
    """Frame ``[B, 3, 3]`` (Cartesian rows) -> rotation ``Q`` mapping the canonical axes onto
    the frame (its columns are the frame vectors). Rotating the input by R gives ``R @ Q``."""
    return frame.transpose(-1, -2)
