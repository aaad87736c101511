"""SO(3) bookkeeping: irreps layouts, real spherical harmonics, CG coefficients, Wigner-D."""
from .harmonics import clebsch_gordan, real_spherical_harmonics
from .irreps import (Features, channels_from_irreps, features_irreps, features_to_flat,
                     flat_to_features, irreps_from_channels, irreps_lmax)
from .rotations import irreps_D, random_rotation, rotate_flat, wigner_D

__all__ = [
    "Features", "channels_from_irreps", "clebsch_gordan", "features_irreps", "features_to_flat",
    "flat_to_features", "irreps_D", "irreps_from_channels", "irreps_lmax", "random_rotation",
    "real_spherical_harmonics", "rotate_flat", "wigner_D",
]
