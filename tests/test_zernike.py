"""Zernike Fourier transform: radial functions, closed form vs quadrature, equivariance, errors.

Reference numbers come from independent code: scipy's Jacobi / hypergeometric functions and
complex spherical harmonics, numpy Gauss-Legendre quadrature, and explicit formulas.
"""
import math

import numpy as np
import pytest
import torch
from scipy.special import binom, eval_jacobi, hyp2f1, sph_harm_y

from holovae.so3 import random_rotation, rotate_flat
from holovae.transforms import (cubic_grid, inverse_zernike_transform, n_radial, zernike_basis,
                                zernike_irreps, zernike_radial, zernike_transform)
from holovae.transforms import zernike_kernel
from holovae.transforms.grid import dh_xyz
from holovae.transforms.spherical import dh_weights

N_MAX, LMAX = 20, 6


def _gauss01(n):
    """Gauss-Legendre nodes and weights on [0, 1]."""
    t, w = np.polynomial.legendre.leggauss(n)
    return (t + 1) / 2, w / 2


def _ref_radial(n, l, x, kind):
    """R_nl(x) from scipy (float64). 'authors' is the paper's formula, integer binomial."""
    k = (n - l) // 2
    if kind == "orthonormal":
        return math.sqrt(2 * n + 3) * x ** l * eval_jacobi(k, 0, l + 0.5, 2 * x ** 2 - 1)
    return ((-1) ** k * math.sqrt(2 * n + 3) * binom((n + l + 3) // 2 - 1, k)
            * hyp2f1(-k, (n + l + 3) / 2, l + 1.5, x ** 2) * x ** l)


def _nl_pairs(n_max, lmax):
    return [(l + 2 * k, l) for l in range(lmax + 1) for k in range(n_radial(l, n_max))]


def _blocks(coeffs, n_channels, lmax, n_max):
    """flat [B, dim] -> {(channel, n, l): [B, 2l+1]} following the documented layout."""
    out, col = {}, 0
    for l in range(lmax + 1):
        nr = n_radial(l, n_max)
        blk = coeffs[:, col:col + n_channels * nr * (2 * l + 1)].reshape(len(coeffs), n_channels, nr, 2 * l + 1)
        for c in range(n_channels):
            for k in range(nr):
                out[(c, l + 2 * k, l)] = blk[:, c, k]
        col += n_channels * nr * (2 * l + 1)
    return out


def _ragged(sizes, n_channels, seed=0, r_max=10.0):
    g = torch.Generator().manual_seed(seed)
    P = sum(sizes)
    d = torch.randn(P, 3, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    pts = d * (r_max * torch.rand(P, 1, generator=g, dtype=torch.float64) ** (1 / 3))
    ch = torch.randint(0, n_channels, (P,), generator=g)
    offsets = torch.tensor([0] + np.cumsum(sizes).tolist())
    return pts, ch, offsets


# ---------------------------------------------------------------------------------------------
def test_irreps():
    assert str(zernike_irreps(4, 4, 20)) == "44x0e+40x1e+40x2e+36x3e+36x4e"
    assert zernike_irreps(4, 4, 20).dim == 940
    irr6 = zernike_irreps(4, 6, 20)
    assert irr6.dim == 1708 and str(irr6).endswith("32x5e+32x6e")
    with pytest.raises(ValueError):
        zernike_irreps(1, 5, 4)


def test_radial_orthonormal_by_quadrature():
    x, w = _gauss01(40)                         # exact for the degree-42 integrands
    R = zernike_radial(N_MAX, 10, torch.tensor(x), as_dict=True)
    for l in range(11):
        G = (R[l].numpy() * (w * x ** 2)[:, None]).T @ R[l].numpy()
        np.testing.assert_allclose(G, np.eye(len(G)), atol=1e-11)


def test_radial_authors_norm_and_formula():
    x, w = _gauss01(40)
    R = zernike_radial(N_MAX, LMAX, torch.tensor(x), kind="authors")
    norm40 = float((R[0][:, 2].numpy() ** 2 * x ** 2 * w).sum())
    assert norm40 == pytest.approx(0.2844, abs=1e-4)       # the authors' radial (docs/fidelity.md#transform): 0.284
    G = (R[3].numpy() * (w * x ** 2)[:, None]).T @ R[3].numpy()
    np.testing.assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-11)   # orthogonal


@pytest.mark.parametrize("kind", ["orthonormal", "authors"])
def test_radial_matches_scipy(kind):
    x = np.linspace(0, 1, 1001)
    R64 = zernike_radial(N_MAX, LMAX, torch.tensor(x), kind=kind)
    R32 = zernike_radial(N_MAX, LMAX, torch.tensor(x, dtype=torch.float32), kind=kind)
    assert R32[0].dtype == torch.float32
    for n, l in _nl_pairs(N_MAX, LMAX):
        ref = _ref_radial(n, l, x, kind)
        scale = np.abs(ref).max()
        k = (n - l) // 2
        assert np.abs(R64[l][:, k].numpy() - ref).max() <= 1e-11 * scale, (n, l)
        # float32 input/output: evaluated in float64, so only the final rounding remains
        # (compared at the float32-rounded x: R_nl is steep, rounding x alone costs ~1e-5)
        ref32 = _ref_radial(n, l, x.astype(np.float32).astype(np.float64), kind)
        assert np.abs(R32[l][:, k].double().numpy() - ref32).max() <= 2e-7 * scale, (n, l)
    assert all(float(R64[l][-1, 0]) > 0 for l in range(LMAX + 1))            # R_nl(1) > 0


# ---------------------------------------------------------------------------------------------
def _direct(points, channels, offsets, n_channels, lmax, n_max, r_max, weights=None,
            normalization=None, radial="orthonormal"):
    """Slow reference: explicit basis (e3nn SH + zernike_radial) summed per cloud and channel."""
    basis = zernike_basis(points.double(), lmax, n_max, r_max, radial)        # [P, K]
    if normalization == "square":
        basis = basis / (basis ** 2).sum(1, keepdim=True).clamp_min(1e-300)
    if weights is not None:
        basis = basis * weights.double()[:, None]
    B = len(offsets) - 1
    cloud = torch.repeat_interleave(torch.arange(B), offsets[1:] - offsets[:-1])
    acc = torch.zeros(B, n_channels, basis.shape[1], dtype=torch.float64)
    acc.index_put_((cloud, channels), basis, accumulate=True)
    blocks, col = [], 0
    for l in range(lmax + 1):
        width = n_radial(l, n_max) * (2 * l + 1)
        blocks.append(acc[:, :, col:col + width].reshape(B, -1))
        col += width
    return torch.cat(blocks, dim=1)


@pytest.mark.parametrize("normalization", [None, "square"])
@pytest.mark.parametrize("radial", ["orthonormal", "authors"])
def test_fast_path_matches_direct_sum(normalization, radial):
    pts, ch, off = _ragged([13, 0, 40, 1, 7], 3, seed=1)
    pts[5] = 0.0                                                    # a point at the origin
    w = torch.rand(len(pts), dtype=torch.float64) + 0.5
    ref = _direct(pts, ch, off, 3, LMAX, N_MAX, 10.0, w, normalization, radial)
    got = zernike_transform(pts, ch, off, n_channels=3, lmax=LMAX, n_max=N_MAX, r_max=10.0, weights=w,
                            normalization=normalization, radial=radial, dtype=torch.float64)
    assert torch.allclose(got, ref, rtol=0, atol=1e-12 * ref.abs().max())
    # small slot budget: many batches, groups larger than a batch
    got_small = zernike_transform(pts, ch, off, n_channels=3, lmax=LMAX, n_max=N_MAX, r_max=10.0,
                                  weights=w, normalization=normalization, radial=radial,
                                  dtype=torch.float64, slot_budget=8)
    assert torch.allclose(got_small, ref, rtol=0, atol=1e-12 * ref.abs().max())
    got32 = zernike_transform(pts.float(), ch, off, n_channels=3, lmax=LMAX, n_max=N_MAX, r_max=10.0,
                              weights=w.float(), normalization=normalization, radial=radial)
    assert got32.dtype == torch.float32
    assert float((got32.double() - ref).norm() / ref.norm()) < 1e-6


def test_single_point_explicit_l01():
    """One point: f[n,0] = R_n0(x)/sqrt(4 pi), f[n,1,:] = R_n1(x) sqrt(3/(4 pi)) (x, y, z)/r."""
    p = np.array([2.0, -3.0, 6.0])                               # r = 7
    x = 7.0 / 10.0
    f = zernike_transform(torch.tensor(p)[None], lmax=2, n_max=6, r_max=10.0, dtype=torch.float64)
    blocks = _blocks(f, 1, 2, 6)
    for n in (0, 2, 4, 6):
        assert float(blocks[(0, n, 0)][0, 0]) == pytest.approx(_ref_radial(n, 0, x, "orthonormal") / math.sqrt(4 * math.pi), rel=1e-12)
    for n in (1, 3, 5):
        ref = _ref_radial(n, 1, x, "orthonormal") * math.sqrt(3 / (4 * math.pi)) * p / 7.0
        np.testing.assert_allclose(blocks[(0, n, 1)][0].numpy(), ref, rtol=1e-12)


def test_origin_only_l0():
    f = zernike_transform(torch.zeros(3, 3), lmax=4, n_max=8, r_max=1.0, dtype=torch.float64)
    assert torch.isfinite(f).all()
    blocks = _blocks(f, 1, 4, 8)
    for (c, n, l), v in blocks.items():
        if l == 0:
            assert float(v[0, 0]) == pytest.approx(3 * _ref_radial(n, 0, 0.0, "orthonormal") / math.sqrt(4 * math.pi))
        else:
            assert float(v.abs().max()) == 0.0


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalization", [None, "square"])
def test_rotation_equivariance(normalization):
    sizes = [120, 0, 37, 1, 500]
    pts, ch, off = _ragged(sizes, 4, seed=2)
    irreps = zernike_irreps(4, LMAX, N_MAX)
    kw = dict(n_channels=4, lmax=LMAX, n_max=N_MAX, r_max=10.0, normalization=normalization)
    f = zernike_transform(pts.float(), ch, off, **kw)
    g = torch.Generator().manual_seed(3)
    for R in random_rotation(4, generator=g):
        f_rot = zernike_transform((pts @ R.T).float(), ch, off, **kw)
        expected = rotate_flat(f.double(), irreps, R)
        err = (f_rot.double() - expected).norm(dim=1) / expected.norm(dim=1).clamp_min(1e-30)
        assert float(err[[0, 2, 3, 4]].max()) <= 1e-5
        assert float(f_rot[1].abs().max()) == 0.0                     # empty cloud


def test_power_spectrum_invariant():
    pts, ch, off = _ragged([300, 80], 2, seed=4)
    kw = dict(n_channels=2, lmax=LMAX, n_max=N_MAX, r_max=10.0, dtype=torch.float64)
    R = random_rotation(generator=torch.Generator().manual_seed(5))
    a = _blocks(zernike_transform(pts, ch, off, **kw), 2, LMAX, N_MAX)
    b = _blocks(zernike_transform(pts @ R.T, ch, off, **kw), 2, LMAX, N_MAX)
    for key in a:
        na, nb = a[key].norm(dim=1), b[key].norm(dim=1)
        assert torch.allclose(na, nb, rtol=1e-9, atol=1e-12), key


# ---------------------------------------------------------------------------------------------
def _ball_quadrature(n_r, bw, r_max):
    """Our quadrature of the ball: Gauss-Legendre in r x Driscoll-Healy on the sphere."""
    r, wr = _gauss01(n_r)
    r, wr = r * r_max, wr * r_max * (r * r_max) ** 2
    dirs = dh_xyz(bw).reshape(-1, 3).numpy()
    wa = np.repeat(dh_weights(bw).numpy() * math.pi / bw, 2 * bw)
    pts = (r[:, None, None] * dirs[None]).reshape(-1, 3)
    return pts, (wr[:, None] * wa[None]).reshape(-1)


def _density(p, r_max):
    c = np.array([0.2, -0.1, 0.3]) * r_max
    return np.exp(-((p - c) ** 2).sum(-1) / (2 * (0.3 * r_max) ** 2))


def test_closed_form_equals_integral_of_density():
    """ZFT of quadrature points weighted by a smooth density == the integral, computed
    independently with scipy's complex SH (power per (n, l), signed values for l = 0, 1)."""
    r_max, lmax, n_max = 5.0, 4, 10
    pts, w = _ball_quadrature(36, 16, r_max)
    f = zernike_transform(torch.tensor(pts), weights=torch.tensor(w * _density(pts, r_max)),
                          lmax=lmax, n_max=n_max, r_max=r_max, dtype=torch.float64)
    ours = _blocks(f, 1, lmax, n_max)

    # reference: Gauss-Legendre in r and cos(theta), trapezoid in phi (different node counts)
    x, wx = _gauss01(44)
    ct, wct = np.polynomial.legendre.leggauss(40)
    phi = np.arange(72) * 2 * np.pi / 72
    theta = np.arccos(ct)
    T, PH = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(T) * np.cos(PH), np.sin(T) * np.sin(PH), np.cos(T)], -1)
    wang = (wct[:, None] * np.full(72, 2 * np.pi / 72)[None]).reshape(-1)
    rho = _density(x[:, None, None, None] * r_max * dirs[None], r_max).reshape(len(x), -1)   # [r, ang]
    vol = wx * x ** 2 * r_max ** 3
    for n, l in _nl_pairs(n_max, lmax):
        Rn = _ref_radial(n, l, x, "orthonormal")
        coeffs = []
        for m in range(-l, l + 1):
            Y = sph_harm_y(l, m, T, PH).reshape(-1)
            coeffs.append(((rho * np.conj(Y)[None] * wang[None]).sum(1) * Rn * vol).sum())
        power = float(np.sum(np.abs(coeffs) ** 2))
        assert float((ours[(0, n, l)] ** 2).sum()) == pytest.approx(power, rel=1e-7, abs=1e-12), (n, l)
        if l == 0:
            assert float(ours[(0, n, 0)][0, 0]) == pytest.approx(coeffs[0].real, rel=1e-7, abs=1e-10)
        if l == 1:   # e3nn: Y_1 = sqrt(3 / 4 pi) (x, y, z) / r
            Y1 = math.sqrt(3 / (4 * math.pi)) * dirs.reshape(-1, 3)
            ref = ((rho[:, :, None] * Y1[None] * wang[None, :, None]).sum(1) * (Rn * vol)[:, None]).sum(0)
            np.testing.assert_allclose(ours[(0, n, 1)][0].numpy(), ref, rtol=1e-7, atol=1e-10)


def test_uniform_ball_analytic():
    """rho = 1 in the ball: f_000 = sqrt(4 pi / 3) r_max^3, everything else 0 (orthogonality)."""
    r_max = 2.0
    pts, w = _ball_quadrature(16, 8, r_max)
    f = zernike_transform(torch.tensor(pts), weights=torch.tensor(w), lmax=4, n_max=10, r_max=r_max,
                          dtype=torch.float64)
    expected = torch.zeros_like(f)
    expected[0, 0] = math.sqrt(4 * math.pi / 3) * r_max ** 3
    assert torch.allclose(f, expected, atol=1e-10)


# ---------------------------------------------------------------------------------------------
def test_inverse_reconstructs_smooth_density():
    r_max, lmax, n_max = 1.0, 8, 20
    pts, w = _ball_quadrature(30, 16, r_max)
    f = zernike_transform(torch.tensor(pts), weights=torch.tensor(w * _density(pts, r_max)),
                          lmax=lmax, n_max=n_max, r_max=r_max, dtype=torch.float64)
    grid = cubic_grid(16, r_max)
    inside = grid.norm(dim=1) < 0.9 * r_max
    recon = inverse_zernike_transform(f, n_channels=1, lmax=lmax, n_max=n_max, r_max=r_max,
                                      grid_points=grid[inside])[0, 0]
    truth = torch.tensor(_density(grid[inside].numpy(), r_max))
    rel = float((recon - truth).norm() / truth.norm())
    print(f"inverse ZFT of a Gaussian blob: relative L2 error {rel:.2e}")
    assert rel < 1e-3, rel               # band-limited projection (n <= 20, l <= 8): ~2e-5


def test_inverse_of_point_cloud_peaks_at_points():
    p = torch.tensor([[0.3, -0.2, 0.25], [-0.4, 0.3, -0.3]], dtype=torch.float64)
    f = zernike_transform(p, torch.tensor([0, 1]), n_channels=2, lmax=8, n_max=20, r_max=1.0,
                          dtype=torch.float64)
    grid = cubic_grid(24, 1.0)
    img = inverse_zernike_transform(f, n_channels=2, lmax=8, n_max=20, r_max=1.0, grid_points=grid)
    assert img.shape == (1, 2, len(grid))
    for c in range(2):
        peak = grid[img[0, c].argmax()]
        assert float((peak - p[c]).norm()) < 2 / 24 * math.sqrt(3)    # within about a grid cell


# ---------------------------------------------------------------------------------------------
def test_bad_inputs_and_documented_behaviour():
    kw = dict(lmax=2, n_max=4, r_max=1.0)
    pts = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [2.0, 0.0, 0.0], [0.0, -3.0, 0.0]])
    bad = pts.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        zernike_transform(bad, **kw)
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        zernike_transform(bad, **kw)
    with pytest.raises(ValueError, match=r"2 point\(s\) lie beyond r_max=1.0 \(largest radius 3\)"):
        zernike_transform(pts, outside="error", **kw)
    # drop (default): identical to removing the far points
    assert torch.equal(zernike_transform(pts, **kw), zernike_transform(pts[:2], **kw))
    # empty clouds -> zero rows, also with no point at all
    off = torch.tensor([0, 0, 2, 2, 4, 4])
    f = zernike_transform(pts, offsets=off, **kw)
    assert f.shape == (5, zernike_irreps(1, 2, 4).dim)
    assert f[[0, 2, 3, 4]].abs().max() == 0 and f[1].abs().max() > 0
    assert torch.equal(zernike_transform(torch.zeros(0, 3), offsets=torch.tensor([0, 0, 0]), **kw),
                       torch.zeros(2, zernike_irreps(1, 2, 4).dim))
    for off in ([0, 3], [1, 4], [0, 3, 2, 4], [[0, 4]], torch.tensor([0.0, 4.0])):
        with pytest.raises(ValueError, match="offsets"):
            zernike_transform(pts, offsets=torch.as_tensor(off), **kw)
    with pytest.raises(ValueError, match="channels"):
        zernike_transform(pts, torch.tensor([0, 1, 2, 0]), n_channels=2, **kw)
    with pytest.raises(ValueError, match=r"\[P, 3\]"):
        zernike_transform(pts[:, :2], **kw)
    with pytest.raises(ValueError, match="weights"):
        zernike_transform(pts, weights=torch.ones(3), **kw)
    with pytest.raises(ValueError):
        zernike_transform(pts, normalization="l2", **kw)
    # the caller's tensors are not modified
    p64 = pts.double()
    keep = p64.clone()
    zernike_transform(p64, **kw)
    assert torch.equal(p64, keep)


# ---------------------------------------------------------------------------------------------
# the C kernel (float32) against the float64 torch path, and the torch path's float32
# ---------------------------------------------------------------------------------------------
needs_zernike_kernel = pytest.mark.skipif(not zernike_kernel.available(), reason="C kernel unavailable (no compiler)")


def _ragged_case(seed, n_channels=3):
    # clouds from empty to larger than the kernel's gather window (512 points per group), a
    # point at the origin, one on the sphere and one beyond it (dropped)
    pts, ch, off = _ragged([0, 1, 5, 17, 64, 0, 2000, 9, 3], n_channels, seed=seed)
    pts[3] = 0.0
    pts[4] = torch.tensor([0.0, 0.0, 10.0], dtype=torch.float64)
    pts[7] = torch.tensor([11.0, 0.0, 0.0], dtype=torch.float64)
    w = torch.rand(len(pts), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5
    return pts, ch, off, w


@needs_zernike_kernel
@pytest.mark.parametrize("normalization", [None, "square"])
@pytest.mark.parametrize("radial", ["orthonormal", "authors"])
@pytest.mark.parametrize("lmax,n_max", [(0, 0), (1, 3), (4, 9), (6, 20), (12, 14)])
def test_kernel_matches_float64_reference(lmax, n_max, normalization, radial):
    pts, ch, off, w = _ragged_case(seed=lmax + n_max)
    kw = dict(n_channels=3, lmax=lmax, n_max=n_max, r_max=10.0, normalization=normalization, radial=radial)
    ref = zernike_transform(pts, ch, off, weights=w, dtype=torch.float64, **kw)       # the torch path
    for points, weights in ((pts, w), (pts.float(), w.float()), (pts, None)):
        got = zernike_transform(points, ch, off, weights=weights, **kw)               # the kernel
        want = ref if weights is not None else zernike_transform(pts, ch, off, dtype=torch.float64, **kw)
        assert got.dtype == torch.float32
        rel = float((got.double() - want).norm() / want.norm())
        assert rel < 1e-6, rel
        empty = (off[1:] == off[:-1]).nonzero().flatten()
        assert torch.equal(got[empty], torch.zeros_like(got[empty]))


@needs_zernike_kernel
def test_kernel_is_the_float32_path_and_thread_count_free(monkeypatch):
    pts, ch, off, w = _ragged_case(seed=3)
    kw = dict(n_channels=3, lmax=6, n_max=20, r_max=10.0, normalization="square", radial="authors", weights=w)
    calls = []
    real = zernike_kernel.transform_into
    monkeypatch.setattr(zernike_kernel, "transform_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = zernike_transform(pts, ch, off, **kw)
        torch.set_num_threads(2)
        two = zernike_transform(pts, ch, off, **kw)
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2 and torch.equal(one, two)
    zernike_transform(pts, ch, off, dtype=torch.float64, **kw)                        # float64: torch path
    assert len(calls) == 2


def test_torch_path_float32_without_the_kernel(monkeypatch):
    monkeypatch.setenv("HOLOVAE_NO_FUSED", "1")
    assert not zernike_kernel.available()
    pts, ch, off, w = _ragged_case(seed=5)
    kw = dict(n_channels=3, lmax=6, n_max=20, r_max=10.0, normalization="square", radial="authors", weights=w)
    ref = zernike_transform(pts, ch, off, dtype=torch.float64, **kw)
    got = zernike_transform(pts.float(), ch, off, **kw)
    assert float((got.double() - ref).norm() / ref.norm()) < 1e-6


@pytest.mark.slow   # two fresh interpreters: ~10 s
def test_coefficients_are_the_same_bits_in_every_process():
    """The change to e3nn's basis is fitted once per process; a fit whose last bits varied from
    run to run (torch's lstsq did) made every output vary too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import hashlib, torch\n"
            "from holovae.transforms.zernike import zernike_transform\n"
            "g = torch.Generator().manual_seed(0)\n"
            "p = torch.randn(3000, 3, generator=g) * 4\n"
            "c = torch.randint(0, 4, (3000,), generator=g)\n"
            "o = torch.arange(0, 3001, 100)\n"
            "h = hashlib.sha256()\n"
            "for dt in (torch.float32, torch.float64):\n"
            "    f = zernike_transform(p, c, o, n_channels=4, lmax=6, n_max=20, r_max=10.0, radial='authors',\n"
            "                          normalization='square', dtype=dt)\n"
            "    h.update(f.numpy().tobytes())\n"
            "print(h.hexdigest())\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = [subprocess.run([sys.executable, "-c", code], env={**env, "OMP_NUM_THREADS": t}, capture_output=True,
                          text=True, check=True).stdout for t in ("1", "2")]
    assert out[0] == out[1] and len(out[0].strip()) == 64
