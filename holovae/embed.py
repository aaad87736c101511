"""Batched embedding of steerable-tensor datasets with a trained H-(V)AE."""
from __future__ import annotations

import torch
from holovae._e3nn import o3
from tqdm.auto import tqdm

from .models import HVAE


@torch.no_grad()
def embed(model: HVAE, x: torch.Tensor, batch_size: int = 512, reconstructions: bool = True,
          progress: bool = False) -> dict:
    """``x [N, dim]`` -> ``{"z": [N, z] (the mean), "frame": [N, 3, 3], "x_rec": [N, dim]}``.

    Raises if ``x``'s width differs from the model's irreps (naming both).
    """
    irreps = o3.Irreps(model.config.irreps_in)
    if x.ndim != 2 or x.shape[1] != irreps.dim:
        raise ValueError(f"data of shape {tuple(x.shape)} does not match the model's irreps {irreps} (dim {irreps.dim})")
    model.eval()
    device = next(model.parameters()).device
    zs, frames, recs = [], [], []
    for s in tqdm(range(0, len(x), batch_size), disable=not progress, desc="embedding"):
        xb = x[s:s + batch_size].to(device)
        z, _, frame = model.encode(xb)
        zs.append(z.cpu())
        frames.append(frame.cpu())
        if reconstructions:
            recs.append(model.decode(z, frame).cpu())
    out = {"z": torch.cat(zs), "frame": torch.cat(frames)}
    if reconstructions:
        out["x_rec"] = torch.cat(recs)
    return out
