"""Shrec17 preprocessing: ray casting one mesh onto the bandwidth-90 grid (the paper's) and the
real spherical harmonics of degree > 12 that its L = 14 transform needs.

- ``raycast_bw90``: trimesh's pure-numpy ray/triangle intersector (what trimesh uses without
  Embree) vs the Embree backend holovae installs (``embreex``); 2 x 32,400 rays (mesh and convex
  hull) on a 5,120-face sphere, per mesh.
- ``sh_L14_setup``: e3nn's angular harmonics (``spherical_harmonics_alpha_beta``, which builds
  its Legendre polynomials in sympy, once per process) vs holovae's continuation of e3nn's
  closed forms by Clebsch-Gordan products; one evaluation on the bw-90 grid in a fresh cache,
  as every ray-casting job pays it once.
"""
from __future__ import annotations

import time

import numpy as np

try:
    from ._common import per_second, record
except ImportError:  # run as a script
    from _common import per_second, record


def _sphere():
    import trimesh

    from holovae.transforms.raycast import normalize_mesh
    return normalize_mesh(trimesh.creation.icosphere(subdivisions=4))


def _raycast_records(out_dir, device, bw=90):
    import trimesh
    from trimesh.ray.ray_triangle import RayMeshIntersector

    from holovae.transforms.raycast import has_fast_rays, raycast_image

    if not has_fast_rays():
        print("  embreex not installed: raycast benchmark skipped")
        return []
    mesh = _sphere()
    fast = per_second(lambda: raycast_image(mesh, bw), 1)

    slow_mesh = mesh.copy()
    slow_mesh.ray = RayMeshIntersector(slow_mesh)   # what trimesh falls back to without Embree
    start = time.perf_counter()
    slow_image, _ = raycast_image(slow_mesh, bw)
    base = 1.0 / (time.perf_counter() - start)
    fast_image, _ = raycast_image(mesh, bw)
    agree = float(np.abs(slow_image - fast_image).max())
    return [record("raycast_bw90", {"bw": bw, "faces": len(mesh.faces), "rays": 2 * (2 * bw) ** 2,
                                    "max_abs_difference": agree, "trimesh": trimesh.__version__},
                   base, fast, "cpu", out_dir, unit="meshes/s")]


def _sh_records(out_dir, device, bw=90, lmax=14):
    from e3nn import o3

    import holovae.so3.harmonics as harmonics
    from holovae.transforms.grid import dh_xyz

    xyz = dh_xyz(bw).reshape(-1, 3)
    start = time.perf_counter()
    alpha, beta = o3.xyz_to_angles(xyz)
    ref = o3.spherical_harmonics_alpha_beta(list(range(lmax + 1)), alpha, beta, normalization="integral")
    base = 1.0 / (time.perf_counter() - start)
    harmonics._raise_degree_scale.cache_clear()
    start = time.perf_counter()
    ours = harmonics.real_spherical_harmonics(lmax, xyz)
    fast = 1.0 / (time.perf_counter() - start)
    return [record("sh_L14_setup", {"bw": bw, "lmax": lmax, "points": len(xyz),
                                    "max_abs_difference": float((ours - ref).abs().max())},
                   base, fast, "cpu", out_dir, unit="evaluations/s")]


def run(out_dir, device: str = "cpu") -> list[dict]:
    return _raycast_records(out_dir, device) + _sh_records(out_dir, device)


if __name__ == "__main__":
    import json
    for r in run("benchmarks/out"):
        print(json.dumps(r))
