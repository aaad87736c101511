"""Spherical Fourier transform on the Driscoll-Healy grid.

Independent references: numpy Legendre polynomials for the quadrature weights, scipy dblquad
for one coefficient, analytic functions of (x, y, z) sampled on the grid for equivariance.
"""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import dblquad

from holovae.so3 import random_rotation, real_spherical_harmonics, rotate_flat
from holovae.transforms import (dh_weights, inverse_spherical_fourier_transform, rotate_grid_signal,
                                sft_irreps, spherical_fourier_transform)
from holovae.transforms.grid import dh_angles, dh_xyz
from holovae.transforms.spherical import lstsq_quadrature_weights


def _poly(xyz):
    """A band-limited (degree <= 3) function of the unit vector."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    return 0.3 + x - 0.5 * y * z + x * x * y + 0.7 * z ** 3 - 0.2 * x * z


def test_irreps():
    assert str(sft_irreps(3)) == "1x0e+1x1e+1x2e+1x3e" and sft_irreps(10).dim == 121


@pytest.mark.parametrize("bw", [4, 15])
def test_dh_weights_integrate_legendre_exactly(bw):
    beta, _ = dh_angles(bw)
    w = dh_weights(bw).numpy()
    for l in range(2 * bw):
        P = np.polynomial.legendre.Legendre.basis(l)(np.cos(beta.numpy()))
        assert float((w * P).sum()) == pytest.approx(2.0 if l == 0 else 0.0, abs=1e-13)


@pytest.mark.parametrize("quadrature", ["dh", "lstsq-weights", "lstsq"])
@pytest.mark.parametrize("bw,lmax", [(8, 7), (30, 10)])
def test_round_trip_band_limited(quadrature, bw, lmax):
    c = torch.randn(6, (lmax + 1) ** 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grid = inverse_spherical_fourier_transform(c, bw)
    assert grid.shape == (6, 2 * bw, 2 * bw)
    back = spherical_fourier_transform(grid, lmax, quadrature)
    assert torch.allclose(back, c, atol=1e-12)
    back32 = spherical_fourier_transform(grid.float(), lmax, quadrature)
    assert back32.dtype == torch.float32 and torch.allclose(back32.double(), c, atol=1e-5)


@pytest.mark.parametrize("quadrature", ["dh", "lstsq-weights", "lstsq"])
def test_rotation_equivariance_on_grid(quadrature):
    bw, lmax = 8, 5
    xyz = dh_xyz(bw)
    f = _poly(xyz)
    irreps = sft_irreps(lmax)
    for R in random_rotation(3, generator=torch.Generator().manual_seed(1)):
        g = _poly(xyz @ R)                           # g(x) = f(R^T x): rows x -> R^T x
        cf = spherical_fourier_transform(f, lmax, quadrature)
        cg = spherical_fourier_transform(g, lmax, quadrature)
        # tolerance: holovae.so3.wigner_D (e3nn) is only accurate to ~3e-7, even in float64
        assert torch.allclose(cg[None], rotate_flat(cf[None], irreps, R), atol=2e-6)
        assert torch.allclose(rotate_grid_signal(f, R), g, atol=2e-6)
    assert cf[16:].abs().max() < 1e-12               # degree-3 polynomial: nothing above l = 3


def test_dh_coefficient_against_scipy_integral():
    """DH quadrature vs scipy's adaptive integral, with e3nn's l <= 1 harmonics written out:
    Y_00 = 1/sqrt(4 pi), Y_1 = sqrt(3/(4 pi)) (x, y, z)."""
    bw = 8
    coeffs = spherical_fourier_transform(_poly(dh_xyz(bw)), 3, "dh")
    ylm = [lambda v: 1 / math.sqrt(4 * math.pi)] + \
          [lambda v, i=i: math.sqrt(3 / (4 * math.pi)) * v[0, i] for i in range(3)]

    def integrand(beta, alpha, idx):
        v = np.array([[math.sin(beta) * math.cos(alpha), math.sin(beta) * math.sin(alpha), math.cos(beta)]])
        return _poly(v)[0] * ylm[idx](v) * math.sin(beta)

    for idx in range(4):
        ref, _ = dblquad(integrand, 0, 2 * math.pi, 0, math.pi, args=(idx,), epsabs=1e-10, epsrel=1e-10)
        assert float(coeffs[idx]) == pytest.approx(ref, rel=1e-8, abs=1e-10)


def test_lstsq_is_best_fit_for_non_band_limited():
    bw, lmax = 8, 4
    f = torch.exp(dh_xyz(bw)[..., 0] * 2)            # not band-limited
    c = spherical_fourier_transform(f, lmax, "lstsq")
    resid = f - inverse_spherical_fourier_transform(c, bw)
    Y = real_spherical_harmonics(lmax, dh_xyz(bw).reshape(-1, 3))
    assert (Y.T @ resid.reshape(-1)).abs().max() < 1e-10      # normal equations


def test_lstsq_weights_are_lie_learns_least_squares_solution():
    """lie_learn's estimate_spherical_quadrature_weights, written out: one row per pair (i, j)
    of harmonics of degree <= L, B[(i,j), p] = Y_i(p) Y_j(p), t = delta_ij, numpy lstsq
    (minimum norm). Real-SH bases of one degree differ by orthogonal matrices, which leave
    the residual norm, and so the solution, unchanged: e3nn's basis stands in for theirs."""
    for bw, lmax in ((6, 2), (8, 3), (10, 4)):
        Y = real_spherical_harmonics(lmax, dh_xyz(bw, torch.float64).reshape(-1, 3)).numpy()
        n = Y.shape[1]
        B = np.stack([Y[:, i] * Y[:, j] for i in range(n) for j in range(n)])
        w, *_ = np.linalg.lstsq(B, np.eye(n).reshape(-1), rcond=None)
        np.testing.assert_allclose(lstsq_quadrature_weights(bw, lmax).numpy(), w, rtol=0, atol=1e-12)


def test_mnist_quadratures_against_driscoll_healy():
    """On real digits (not band-limited) the authors' weights agree with Driscoll-Healy
    quadrature to ~0.1%; the unweighted least-squares fit is ~9% off (the grid is densest at the
    poles, where the digit sits)."""
    from holovae.data.mnist import load_embedded_mnist, project_to_sphere

    images = load_embedded_mnist()[0][:200]
    signal = project_to_sphere(images, 30).double()
    dh = spherical_fourier_transform(signal, 10, "dh")

    def rel(q):
        return float(((spherical_fourier_transform(signal, 10, q) - dh).norm(dim=1) / dh.norm(dim=1)).median())
    assert rel("lstsq-weights") < 0.002
    assert 0.06 < rel("lstsq") < 0.12


def test_bad_inputs():
    with pytest.raises(ValueError):
        spherical_fourier_transform(torch.zeros(4, 6), 2)           # not square
    with pytest.raises(ValueError):
        spherical_fourier_transform(torch.zeros(6, 6), 6, "dh")    # lmax >= 2 bw
    with pytest.raises(ValueError):
        spherical_fourier_transform(torch.zeros(4, 4), 1, "bogus")
    with pytest.raises(ValueError, match="lstsq-weights"):
        spherical_fourier_transform(torch.zeros(8, 8), 4, "lstsq-weights")   # products of degree 8 >= 2 bw
    with pytest.raises(ValueError):
        inverse_spherical_fourier_transform(torch.zeros(5), 4)     # not (lmax+1)^2


@pytest.mark.slow   # quadrature up to degree 16: ~13 s
def test_harmonics_beyond_e3nn_closed_forms_match_its_angular_path_and_are_orthonormal():
    """Degrees 13..16 (Shrec17 needs L = 14; e3nn's polynomials stop at 12): equal to e3nn's
    Legendre-based harmonics (independent construction), orthonormal by DH quadrature, and
    rotated by the Wigner-D matrices."""
    from e3nn import o3

    from holovae.so3 import wigner_D

    x = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = real_spherical_harmonics(16, x)
    alpha, beta = o3.xyz_to_angles(x / x.norm(dim=1, keepdim=True))
    for normalization in ("integral", "component", "norm"):
        ref = o3.spherical_harmonics_alpha_beta(list(range(17)), alpha, beta, normalization=normalization)
        torch.testing.assert_close(real_spherical_harmonics(16, x, normalization), ref, atol=1e-10, rtol=0)
    assert real_spherical_harmonics(14, torch.zeros(1, 3, dtype=torch.float64))[0, 1:].abs().max() == 0

    bw = 17
    Y = real_spherical_harmonics(16, dh_xyz(bw).reshape(-1, 3))
    w = (dh_weights(bw)[:, None] * (math.pi / bw)).expand(2 * bw, 2 * bw).reshape(-1)
    torch.testing.assert_close(Y.T @ (Y * w[:, None]), torch.eye(289, dtype=torch.float64), atol=1e-10, rtol=0)

    R = random_rotation(generator=torch.Generator().manual_seed(1))
    for l in (13, 14):
        block = slice(l * l, (l + 1) ** 2)
        torch.testing.assert_close(real_spherical_harmonics(l, x @ R.T)[:, block],
                                   ours[:, block] @ wigner_D(l, R).T, atol=1e-11, rtol=0)
