"""Coefficient order of protein Zernike data: holovae's flat layout vs the authors'.

The authors' protein loader reads ``data/zernikegram`` rows laid out by their
``MultiChannelRadialSphericalTensor`` (``holographic_vae/so3/radial_spherical_tensor.py``):
one single-channel ``RadialSphericalTensor`` per element channel (order l, n, m), merged by
``combine`` degree by degree. holovae documents its layout in ``holovae/transforms/zernike.py``
(degree l: mul index ``c * n_radial(l) + k``, then m). This module finds the permutation
``perm`` with ``authors_row = holovae_row[perm]`` empirically, by transforming the same random
point clouds with both implementations and matching columns, then checks it three ways:
the label order derived from the authors' ``combine`` equals holovae's documented order mapped
through ``perm``; every column agrees up to one global factor (authors = holovae / sqrt(4 pi):
e3nn 'component' vs 'integral' spherical harmonics under the 'square' normalisation, which
divides by the squared basis norm), hence so do the per-degree norms; and a rotation, applied by
the authors' ``rotate_signal`` with e3nn Wigner-D matrices, commutes with the permutation.

Needs the authors' code on ``sys.path`` (imported lazily) and the holovae under test.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def _authors_tensors(transform: dict):
    from holographic_vae.so3 import MultiChannelRadialSphericalTensor, RadialSphericalTensor, ZernickeRadialFunctions
    t = transform
    radial = ZernickeRadialFunctions(t["r_max"], t["n_max"] + 1, t["lmax"], complex_sph=False)
    rst = RadialSphericalTensor(t["n_max"] + 1, radial, t["lmax"], 1, 1)
    return rst, MultiChannelRadialSphericalTensor(rst, len(t["elements"]))


def authors_labels(transform: dict) -> list[tuple]:
    """``(l, channel, n, m)`` of every flat index of the authors' layout, read off their
    ``combine`` applied to a tensor that holds each entry's own (channel, rst index) code."""
    rst, mrst = _authors_tensors(transform)
    C = len(transform["elements"])
    rst_labels = []                              # RadialSphericalTensor order: l, then n, then m
    for l, mul in enumerate(rst.multiplicities):
        for k in range(mul):
            rst_labels += [(l, l + 2 * k, m) for m in range(-l, l + 1)]
    codes = torch.arange(C * rst.dim, dtype=torch.float64).view(1, C, rst.dim).repeat(2, 1, 1)
    flat = mrst.combine(codes)[0].long().tolist()
    return [(rst_labels[j % rst.dim][0], j // rst.dim, *rst_labels[j % rst.dim][1:]) for j in flat]


def holovae_documented_labels(transform: dict) -> list[tuple]:
    """``(l, channel, n, m)`` per flat index as holovae's zernike.py documents its layout."""
    from holovae.transforms.zernike import n_radial
    out = []
    for l in range(transform["lmax"] + 1):
        nr = n_radial(l, transform["n_max"])
        for c in range(len(transform["elements"])):
            for k in range(nr):
                out += [(l, c, l + 2 * k, m) for m in range(-l, l + 1)]
    return out


def _random_clouds(n_clouds: int, n_channels: int, r_max: float, gen: torch.Generator):
    """Clouds of 12..30 points, every channel present, radii in (0.5, 0.95 r_max)."""
    clouds = []
    for _ in range(n_clouds):
        n = int(torch.randint(12, 31, (1,), generator=gen))
        d = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        r = (0.05 + 0.9 * torch.rand(n, 1, generator=gen, dtype=torch.float64)) * r_max
        ch = torch.cat([torch.arange(n_channels), torch.randint(0, n_channels, (n - n_channels,), generator=gen)])
        clouds.append((d / d.norm(dim=1, keepdim=True) * r, ch))
    return clouds


def _holovae_coeffs(clouds, transform: dict) -> torch.Tensor:
    from holovae.transforms.zernike import zernike_transform
    t = transform
    pts = torch.cat([p for p, _ in clouds])
    ch = torch.cat([c for _, c in clouds])
    offsets = torch.tensor([0] + list(np.cumsum([len(p) for p, _ in clouds])))
    return zernike_transform(pts, ch, offsets, n_channels=len(t["elements"]), lmax=t["lmax"], n_max=t["n_max"],
                             r_max=t["r_max"], normalization=t["normalization"], radial=t["radial"],
                             dtype=torch.float64)


def _authors_coeffs(clouds, transform: dict) -> torch.Tensor:
    """Their preprocessing per cloud: ``with_peaks_at`` per element channel, then ``combine``."""
    rst, mrst = _authors_tensors(transform)
    C = len(transform["elements"])
    per_cloud = []
    for pts, ch in clouds:
        per_cloud.append(torch.stack([rst.with_peaks_at(pts[ch == c].float(), normalization=transform["normalization"])
                                      for c in range(C)]))
    return mrst.combine(torch.stack(per_cloud)).double()


def match_columns(a: torch.Tensor, h: torch.Tensor) -> np.ndarray:
    """``perm`` with ``a[:, j] ~ h[:, perm[j]]`` up to a positive factor (best cosine)."""
    an = a / a.norm(dim=0, keepdim=True)
    hn = h / h.norm(dim=0, keepdim=True)
    cos = an.T @ hn                                  # [dim_a, dim_h]
    perm = cos.argmax(dim=1).numpy()
    if len(set(perm.tolist())) != len(perm):
        raise AssertionError("column matching is not a bijection")
    return perm


def derive_and_check(transform: dict, n_clouds: int = 24, seed: int = 0) -> dict:
    """Derive ``perm`` (authors_row = holovae_row[perm]) and run the checks; returns a report
    dict. Raises AssertionError when a check fails."""
    from e3nn import o3
    from holographic_vae.so3.functional import get_wigner_D_from_rot_matrix, rotate_signal
    _, mrst = _authors_tensors(transform)
    authors_irreps = o3.Irreps(str(mrst))
    gen = torch.Generator().manual_seed(seed)
    clouds = _random_clouds(n_clouds, len(transform["elements"]), transform["r_max"], gen)
    h = _holovae_coeffs(clouds, transform)
    a = _authors_coeffs(clouds, transform)
    assert a.shape == h.shape, f"authors' layout has {a.shape[1]} coefficients, holovae's {h.shape[1]}"
    perm = match_columns(a, h)
    hp = h[:, perm]
    # one global factor for every coefficient
    scale = float((a * hp).sum() / (hp * hp).sum())
    rel = float((a - scale * hp).norm() / a.norm())
    assert rel < 1e-5, f"after the permutation the coefficients differ beyond a global factor (relative error {rel:.2e})"
    # labels: the authors' combine order vs holovae's documented order, through perm
    la, lh = authors_labels(transform), holovae_documented_labels(transform)
    labels_ok = all(la[j] == lh[perm[j]] for j in range(len(perm)))
    assert labels_ok, "holovae's documented layout mapped through perm is not the authors' combine layout"
    # per-degree norms
    ls = torch.tensor([l for mul, ir in authors_irreps for l in [ir.l] * (mul * ir.dim)])
    norms_a = torch.stack([a[:, ls == l].norm(dim=1) for l in range(transform["lmax"] + 1)])
    norms_h = torch.stack([hp[:, ls == l].norm(dim=1) for l in range(transform["lmax"] + 1)]) * scale
    norm_rel = float(((norms_a - norms_h).abs() / norms_a).max())
    assert norm_rel < 1e-5, f"per-degree norms differ (max relative {norm_rel:.2e})"
    # rotation commutes with the permutation: perm(H(R x)) = D_authors(R) perm(H(x))
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    R = o3.quaternion_to_matrix(q / q.norm())
    h_rot = _holovae_coeffs([(p @ R.T, c) for p, c in clouds], transform)[:, perm]
    wigner = get_wigner_D_from_rot_matrix(transform["lmax"], R)
    rotated = rotate_signal(hp, authors_irreps, wigner)
    rot_rel = float((h_rot - rotated).norm() / h_rot.norm())
    assert rot_rel < 1e-6, f"a rotation does not commute with the permutation (relative error {rot_rel:.2e})"
    return {"perm_is_identity": bool((perm == np.arange(len(perm))).all()), "perm": perm.tolist(),
            "dim": int(len(perm)), "authors_irreps": str(authors_irreps), "global_factor": scale,
            "global_factor_times_sqrt_4pi": scale * math.sqrt(4 * math.pi),
            "coefficient_rel_error": rel, "per_degree_norm_max_rel_error": norm_rel,
            "rotation_commutes_rel_error": rot_rel, "labels_match_documented_order": labels_ok,
            "n_clouds": n_clouds}
