"""Driscoll-Healy grids on the sphere.

Convention (used by every spherical signal in holovae): ``beta`` is the polar angle from the +z
axis, ``alpha`` the azimuth from +x towards +y; a signal on the grid is an array
``[..., 2*bw (beta), 2*bw (alpha)]``.
"""
from __future__ import annotations

import math

import torch


def dh_angles(bw: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Driscoll-Healy grid of bandwidth ``bw``: ``beta [2bw]``, ``alpha [2bw]``.

    ``beta_j = pi (2j+1) / (4 bw)`` (no samples on the poles), ``alpha_k = pi k / bw``.
    """
    if bw < 1:
        raise ValueError(f"bandwidth must be >= 1, got {bw}")
    j = torch.arange(2 * bw, dtype=dtype)
    return math.pi * (2 * j + 1) / (4 * bw), math.pi * j / bw


def dh_xyz(bw: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Unit vectors of the grid points: ``[2bw, 2bw, 3]`` indexed ``[beta, alpha]``."""
    beta, alpha = dh_angles(bw, dtype)
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    return torch.stack([torch.sin(b) * torch.cos(a), torch.sin(b) * torch.sin(a), torch.cos(b)], dim=-1)
