"""Transforms of 3D data into spherical Fourier space."""
