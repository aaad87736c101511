"""Holographic-(V)AE: SO(3)-equivariant (variational) autoencoders in spherical Fourier space."""
__version__ = "0.1.0"
