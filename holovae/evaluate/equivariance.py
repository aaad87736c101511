"""Numerical equivariance of a reconstruction model: ``f(D(R) x)`` vs ``D(R) f(x)`` for
Haar-random rotations R, and invariance of the latent z.

Rotations are applied in float64 and the results cast to the model's dtype, so that the error
measured is the model's, not that of the Wigner-D matrices.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..so3 import random_rotation, rotate_flat


def _model_irreps_dtype_device(model, irreps):
    if irreps is None:
        config = getattr(model, "config", None)
        if config is None:
            raise ValueError("irreps must be given for a model without a .config")
        irreps = config.irreps_in
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    if params:
        return irreps, params[0].dtype, params[0].device
    return irreps, torch.get_default_dtype(), torch.device("cpu")


def _reconstruct(model: Callable, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out["x_rec"] if isinstance(out, dict) else out


def _rotations(n_rotations: int, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return random_rotation(n_rotations * n, generator=gen).reshape(n_rotations, n, 3, 3)   # float64


@torch.no_grad()
def equivariance_error(model: Callable, x: torch.Tensor, n_rotations: int = 1, seed: int = 0,
                       batch_size: int = 256, irreps=None) -> dict:
    """Per-sample equivariance error of ``model``: an HVAE (its ``x_rec``) or any callable
    ``[B, dim] -> [B, dim]`` (then ``irreps`` is required).

    For each sample ``x [N, dim]`` and each of ``n_rotations`` Haar-random ``R`` (one per sample):
    ``a = D(R) f(x)``, ``b = f(D(R) x)``. Returns floats:
    ``equiv_error_mean/std`` of ``mean_i |a_i - b_i|`` (the paper's table), ``abs_value_mean/std``
    of ``mean_i |a_i|``, and ``relative_error_mean/max`` of ``||a - b|| / ||a||``, over all
    N * n_rotations pairs.
    """
    if isinstance(model, torch.nn.Module):
        model.eval()   # batch norm must use running statistics, or the batch mixes samples
    irreps, dtype, device = _model_irreps_dtype_device(model, irreps)
    x64 = x.detach().to(torch.float64).cpu()
    Rs = _rotations(n_rotations, len(x64), seed)
    err, absval, rel = [], [], []
    for R_all in Rs:
        for s in range(0, len(x64), batch_size):
            xb, R = x64[s:s + batch_size], R_all[s:s + batch_size]
            f_x = _reconstruct(model, xb.to(device, dtype)).to("cpu", torch.float64)
            a = rotate_flat(f_x, irreps, R)
            b = _reconstruct(model, rotate_flat(xb, irreps, R).to(device, dtype)).to("cpu", torch.float64)
            d = a - b
            err.append(d.abs().mean(1))
            absval.append(a.abs().mean(1))
            rel.append(d.norm(dim=1) / a.norm(dim=1).clamp_min(1e-30))
    err, absval, rel = (torch.cat(v).numpy() for v in (err, absval, rel))
    return {"equiv_error_mean": float(err.mean()), "equiv_error_std": float(err.std()),
            "abs_value_mean": float(absval.mean()), "abs_value_std": float(absval.std()),
            "relative_error_mean": float(rel.mean()), "relative_error_max": float(rel.max())}


@torch.no_grad()
def latent_invariance_error(model, x: torch.Tensor, n_rotations: int = 1, seed: int = 0,
                            batch_size: int = 256) -> float:
    """Max over samples and rotations of ``||z(D(R) x) - z(x)|| / ||z(x)||`` (z = the encoder's
    mean). ``model`` must have ``encode(x) -> (z_mean, z_log_var, frame)`` and ``config``."""
    model.eval()
    irreps, dtype, device = _model_irreps_dtype_device(model, None)
    x64 = x.detach().to(torch.float64).cpu()
    worst = 0.0
    for R_all in _rotations(n_rotations, len(x64), seed):
        for s in range(0, len(x64), batch_size):
            xb, R = x64[s:s + batch_size], R_all[s:s + batch_size]
            z = model.encode(xb.to(device, dtype))[0].to("cpu", torch.float64)
            z_rot = model.encode(rotate_flat(xb, irreps, R).to(device, dtype))[0].to("cpu", torch.float64)
            rel = (z_rot - z).norm(dim=1) / z.norm(dim=1).clamp_min(1e-30)
            worst = max(worst, float(rel.max()))
    return worst
