"""Transforms of 3D data into spherical Fourier space."""
from .grid import dh_angles, dh_xyz
from .spherical import (dh_weights, inverse_spherical_fourier_transform, multichannel_sft_irreps,
                        multichannel_spherical_fourier_transform, rotate_grid_signal, sft_irreps,
                        spherical_fourier_transform)
from .zernike import (cubic_grid, inverse_zernike_transform, n_radial, zernike_basis,
                      zernike_irreps, zernike_radial, zernike_transform)

__all__ = [
    "cubic_grid", "dh_angles", "dh_weights", "dh_xyz", "inverse_spherical_fourier_transform",
    "inverse_zernike_transform", "multichannel_sft_irreps", "multichannel_spherical_fourier_transform",
    "n_radial", "rotate_grid_signal", "sft_irreps",
    "spherical_fourier_transform", "zernike_basis", "zernike_irreps", "zernike_radial",
    "zernike_transform",
]
