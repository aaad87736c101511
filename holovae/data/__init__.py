"""Steerable-tensor datasets: HDF5 io and the per-dataset preparation (MNIST, proteins, ...)."""
