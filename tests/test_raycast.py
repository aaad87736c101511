"""Ray-cast spherical images of meshes (Shrec17): analytic distances and normals for a cube, a
sphere and a torus (rays through its hole, its flat-topped convex hull), the rotation behaviour
of the normalisation, and rotating a mesh = rotating its spherical coefficients by Wigner-D up
to the grid's sampling error (reported per bandwidth)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

trimesh = pytest.importorskip("trimesh")

from holovae.so3 import random_rotation, rotate_flat  # noqa: E402
from holovae.transforms.grid import dh_xyz  # noqa: E402
from holovae.transforms.raycast import (MISS_DISTANCE, RAYCAST_CHANNELS, SPHERICAL_CNNS_STANDARDIZATION,  # noqa: E402
                                        cast_rays_to_centre, has_fast_rays, normalize_mesh, raycast_image,
                                        standardize_channels)
from holovae.transforms.spherical import (multichannel_sft_irreps, multichannel_spherical_fourier_transform,  # noqa: E402
                                          sft_irreps, spherical_fourier_transform)

pytestmark = pytest.mark.skipif(not has_fast_rays(), reason="embreex not installed (pure-numpy rays: minutes)")


def _transform(R: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    return T


def test_cube_matches_analytic_distance_and_normal_angle():
    cube = normalize_mesh(trimesh.creation.box(extents=(2.0, 2.0, 2.0)))
    half = 0.99 / np.sqrt(3)                        # farthest vertex (a corner) at 0.99
    assert np.allclose(np.abs(cube.vertices), half, atol=1e-12)
    bw = 12
    image, hull_ok = raycast_image(cube, bw)
    g = dh_xyz(bw).numpy()
    inf_norm = np.abs(g).max(-1)                    # the face hit is the one of the largest coordinate
    assert hull_ok and image.shape == (6, 2 * bw, 2 * bw)
    np.testing.assert_allclose(image[0], 1 - half / inf_norm, atol=2e-6)
    np.testing.assert_allclose(image[1], inf_norm, atol=2e-6)          # n . g with n the face's axis
    np.testing.assert_allclose(image[2], np.sqrt(1 - inf_norm ** 2), atol=2e-5)
    np.testing.assert_allclose(image[3:], image[:3], atol=2e-6)        # a cube is its own convex hull


def test_sphere_is_hit_at_its_radius_head_on():
    sphere = normalize_mesh(trimesh.creation.icosphere(subdivisions=5, radius=7.0))
    image, _ = raycast_image(sphere, 10)
    # facets lie inside the circumscribed sphere by at most the sagitta (~2e-4 at this subdivision)
    assert np.all(image[0] >= 0.01 - 1e-6) and np.all(image[0] <= 0.01 + 3e-4)
    assert image[1].min() > 0.999 and image[2].max() < 0.03   # faceted normals nearly radial


def test_torus_polar_rays_miss_and_its_hull_is_flat_topped():
    torus = normalize_mesh(trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=48,
                                                  minor_sections=16))
    top = torus.vertices[:, 2].max()
    points = np.array([[0.0, 0.0, 1.0], [np.sin(0.1), 0.0, np.cos(0.1)], [0.0, 0.0, -1.0]])
    mesh_channels = cast_rays_to_centre(torus, points)
    np.testing.assert_array_equal(mesh_channels, [[MISS_DISTANCE] * 3, [0.0] * 3, [0.0] * 3])
    hull = cast_rays_to_centre(torus.convex_hull, points)
    cos_beta = np.abs(points[:, 2])
    np.testing.assert_allclose(hull[0], 1 - top / cos_beta, atol=1e-5)   # the hull's flat top cap
    np.testing.assert_allclose(hull[1], cos_beta, atol=1e-5)             # its normal is +-z


def test_normalisation_commutes_with_rotation_and_ignores_translation():
    from holovae.data.synthetic_meshes import synthetic_mesh

    mesh = synthetic_mesh("table", "four_legs", np.random.default_rng(0))
    R = random_rotation(generator=torch.Generator().manual_seed(3)).numpy()
    moved = mesh.copy()
    moved.apply_transform(_transform(R))
    moved.apply_translation([3.0, -1.0, 2.0])
    a, b = normalize_mesh(mesh), normalize_mesh(moved)
    np.testing.assert_allclose(b.vertices, a.vertices @ R.T, atol=1e-10)
    assert np.isclose(np.linalg.norm(a.vertices, axis=1).max(), 0.99)
    with pytest.raises(ValueError, match="radius"):
        normalize_mesh(mesh, radius=1.5)


def test_degenerate_mesh_is_rejected():
    flat = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [2, 0, 0]], faces=[[0, 1, 2]], process=False)
    with pytest.raises(ValueError, match="non-degenerate"):
        normalize_mesh(flat)


def test_multichannel_transform_is_per_channel_sft_in_e3nn_order():
    rng = np.random.default_rng(0)
    signal = torch.from_numpy(rng.normal(size=(2, 3, 16, 16)))
    flat = multichannel_spherical_fourier_transform(signal, 5)
    irreps = multichannel_sft_irreps(3, 5)
    assert str(irreps) == "3x0e+3x1e+3x2e+3x3e+3x4e+3x5e" and flat.shape == (2, irreps.dim)
    single = spherical_fourier_transform(signal, 5)                  # [2, 3, 36]
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        l = ir.l
        np.testing.assert_allclose(flat[:, sl].reshape(2, 3, 2 * l + 1), single[..., l * l:(l + 1) ** 2])
    assert str(sft_irreps(5)) == str(multichannel_sft_irreps(1, 5))


@pytest.mark.parametrize("bw, bound", [(16, 0.15), (64, 0.02)])
def test_rotating_a_mesh_rotates_its_coefficients(bw, bound):
    """D(R) f(mesh) vs f(R mesh) at L = 14: equal up to the sampling of a discontinuous image on the
    grid. Measured on this table-like mesh: relative error 0.093 (bw 16), 0.033 (32), 0.010 (64),
    0.006 (90); a wrong rotation gives ~0.48."""
    from holovae.data.synthetic_meshes import synthetic_mesh

    mesh = synthetic_mesh("table", "four_legs", np.random.default_rng(0))
    R = random_rotation(generator=torch.Generator().manual_seed(1))
    other = random_rotation(generator=torch.Generator().manual_seed(2))
    rotated = mesh.copy()
    rotated.apply_transform(_transform(R.numpy()))
    irreps = multichannel_sft_irreps(len(RAYCAST_CHANNELS), 14)

    def coeffs(m):
        return multichannel_spherical_fourier_transform(torch.from_numpy(raycast_image(normalize_mesh(m), bw)[0]), 14)

    a, b = coeffs(mesh), coeffs(rotated)
    err = float((b - rotate_flat(a[None], irreps, R)[0]).norm() / b.norm())
    wrong = float((b - rotate_flat(a[None], irreps, other)[0]).norm() / b.norm())
    print(f"bw {bw}: relative error {err:.4f} (wrong rotation {wrong:.3f})")
    assert err < bound and wrong > 0.3


def test_standardisation_and_its_errors():
    image = np.ones((6, 4, 4))
    mean, std = SPHERICAL_CNNS_STANDARDIZATION["mean"], SPHERICAL_CNNS_STANDARDIZATION["std"]
    out = standardize_channels(image, mean, std)
    np.testing.assert_allclose(out[:, 0, 0], (1 - np.array(mean)) / np.array(std))
    with pytest.raises(ValueError, match="6 channels but 2 means"):
        standardize_channels(image, mean[:2], std[:2])
    with pytest.raises(ValueError, match="positive"):
        standardize_channels(image, mean, (0.0,) * 6)
