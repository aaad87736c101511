"""Per-degree linear layer (equivariant channel mixing)."""
from __future__ import annotations

import math
from typing import Mapping

import torch

from ..so3.irreps import Features


class SO3Linear(torch.nn.Module):
    """``y_l = x_l @ W_l`` for every degree ``l`` kept in the output; no bias (a bias would break
    equivariance for l > 0, and the blocks' norms provide the l = 0 offsets).

    ``channels_in`` / ``channels_out``: ``{l: C_l}``. Input ``{l: [2l+1, B, C_in_l]}`` ->
    output ``{l: [2l+1, B, C_out_l]}`` for the degrees of ``channels_out``.
    Weights are xavier-uniform, as the authors initialised them.
    """

    def __init__(self, channels_in: Mapping[int, int], channels_out: Mapping[int, int]):
        super().__init__()
        missing = sorted(set(channels_out) - set(channels_in))
        if missing:
            raise ValueError(f"SO3Linear cannot create degrees {missing} absent from its input {dict(channels_in)}")
        self.channels_in = dict(channels_in)
        self.channels_out = dict(channels_out)
        self.weights = torch.nn.ParameterDict()
        for l, c_out in sorted(self.channels_out.items()):
            c_in = self.channels_in[l]
            bound = math.sqrt(6.0 / (c_in + c_out))
            self.weights[str(l)] = torch.nn.Parameter(torch.empty(c_in, c_out).uniform_(-bound, bound))

    def forward(self, x: Features) -> Features:
        return {l: torch.matmul(x[l], self.weights[str(l)]) for l in self.channels_out}

    def extra_repr(self) -> str:
        return f"{self.channels_in} -> {self.channels_out}"
