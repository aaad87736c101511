"""Irreps bookkeeping for SO(3) steerable tensors.

A steerable tensor with ``C_l`` channels of degree ``l`` (l = 0..L) is stored, on disk and
between modules, as a flat ``[N, dim]`` array in e3nn's ``mul x ir`` order: for each degree
in increasing order, a ``[C_l, 2l+1]`` block flattened channel-major. Every degree is labelled
even parity (``"e"``) because only rotations (SO(3)) act on our data.

Inside the network a steerable tensor is a ``dict`` ``{l: Tensor[2l+1, B, C_l]}``
("component-major"): the per-degree linear layer is then one plain matmul and the CG tensor
product sees a ``[D, B*C]`` matrix without copies.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from holovae._e3nn import o3

Features = Dict[int, torch.Tensor]


def irreps_from_channels(channels: Sequence[int]) -> o3.Irreps:
    """``[C_0, ..., C_L]`` -> ``o3.Irreps("C_0x0e+...+C_Lx{L}e")`` (degrees with 0 channels skipped)."""
    if len(channels) == 0:
        raise ValueError("channels must list at least degree 0")
    for l, c in enumerate(channels):
        if int(c) < 0:
            raise ValueError(f"negative channel count {c} for degree {l}")
    return o3.Irreps([(int(c), (l, 1)) for l, c in enumerate(channels) if int(c) > 0])


def channels_from_irreps(irreps) -> list[int]:
    """Inverse of :func:`irreps_from_channels`: ``[C_0, ..., C_L]`` of an SO(3) irreps.

    Raises ``ValueError`` for odd parity, unsorted or repeated degrees, since the flat layout
    would then be ambiguous.
    """
    irreps = o3.Irreps(irreps)
    channels: list[int] = []
    last = -1
    for mul, ir in irreps:
        if ir.p != 1:
            raise ValueError(f"irreps {irreps}: only even parity ('e') is used for SO(3) data, got {ir}")
        if ir.l <= last:
            raise ValueError(f"irreps {irreps}: degrees must be strictly increasing, got {ir.l} after {last}")
        channels.extend([0] * (ir.l - last - 1))
        channels.append(mul)
        last = ir.l
    return channels


def irreps_lmax(irreps) -> int:
    return o3.Irreps(irreps).lmax


def flat_to_features(x: torch.Tensor, irreps) -> Features:
    """``x [B, dim]`` (e3nn order) -> ``{l: [2l+1, B, C_l]}``."""
    irreps = o3.Irreps(irreps)
    if x.ndim != 2 or x.shape[1] != irreps.dim:
        raise ValueError(f"expected a [batch, {irreps.dim}] tensor for irreps {irreps}, got shape {tuple(x.shape)}")
    out: Features = {}
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        out[ir.l] = x[:, sl].reshape(x.shape[0], mul, 2 * ir.l + 1).permute(2, 0, 1).contiguous()
    return out


def features_to_flat(feats: Features) -> torch.Tensor:
    """``{l: [2l+1, B, C_l]}`` -> ``x [B, dim]`` in e3nn order (degrees ascending)."""
    blocks = [feats[l].permute(1, 2, 0).reshape(feats[l].shape[1], -1) for l in sorted(feats)]
    return torch.cat(blocks, dim=1)


def stack_features(feats: Features) -> torch.Tensor:
    """``{l: [2l+1, B, C]}`` (one channel count) -> ``[sum_l (2l+1), B, C]``, degrees ascending:
    the layout of the fused CG block (:meth:`holovae.nn.CGBlock.forward_stacked`)."""
    return torch.cat([feats[l] for l in sorted(feats)], dim=0)


def unstack_features(X: torch.Tensor, degrees: Sequence[int]) -> Features:
    """Inverse of :func:`stack_features` for the given (ascending) degrees; views of ``X``."""
    degrees = list(degrees)
    return dict(zip(degrees, X.split([2 * l + 1 for l in degrees], dim=0)))


def features_irreps(feats: Features) -> o3.Irreps:
    return o3.Irreps([(feats[l].shape[2], (l, 1)) for l in sorted(feats)])
