"""The Clebsch-Gordan block: batch norm -> CG tensor square -> signal norm -> per-degree linear."""
from __future__ import annotations

import functools
from typing import Mapping, Optional

import torch

from ..so3.irreps import Features, stack_features, unstack_features
from .block_tail import cg_block_square_tail, cg_block_tail, cg_block_tail_inference, kept_weight_rows
from .linear import SO3Linear
from .norms import SignalNorm, SO3BatchNorm
from .tensor_product import ChannelwiseTensorProduct, FullTensorProduct


class CGBlock(torch.nn.Module):
    """One H-(V)AE block. ``{l: [2l+1, B, C_in_l]}`` -> ``{l: [2l+1, B, C_out_l]}``.

    ``channels_out`` gives the output channels per degree (degrees up to the block's lmax).
    ``tp="efficient"`` is the channel-wise product on the MST paths (needs the same number of
    channels in every input degree); ``tp="full"`` the channel-mixing product on all paths;
    ``tp="full_channelwise"`` the channel-wise product on all paths (equal channels too).
    """

    def __init__(self, channels_in: Mapping[int, int], channels_out: Mapping[int, int],
                 tp: str = "efficient", tp_implementation: str = "auto", batch_norm: bool = True):
        super().__init__()
        channels_in = dict(channels_in)
        lmax_out = max(channels_out)
        self.bn = SO3BatchNorm(channels_in) if batch_norm else None
        if tp in ("efficient", "full_channelwise"):
            widths = set(channels_in.values())
            if len(widths) != 1:
                raise ValueError(f"the channel-wise tensor product needs equal channels per degree, got {channels_in}")
            self.tp = ChannelwiseTensorProduct(widths.pop(), tuple(sorted(channels_in)), lmax_out,
                                               rule="efficient" if tp == "efficient" else "full",
                                               implementation=tp_implementation)
        elif tp == "full":
            self.tp = FullTensorProduct(channels_in, lmax_out)
        else:
            raise ValueError(f"tp must be 'efficient', 'full' or 'full_channelwise', got {tp!r}")
        self.norm = SignalNorm(self.tp.channels_out)
        self.linear = SO3Linear(self.tp.channels_out, channels_out)
        self.channels_out = dict(channels_out)

    def forward(self, x: Features) -> Features:
        if self.runs_fused(x):
            return self._forward_fused(x)
        if self.bn is not None:
            x = self.bn(x)
        y = self.tp(x)
        norm, linear = self.norm, self.linear
        power = sum(y[l].pow(2).sum(dim=(0, 2)) / (2 * l + 1) for l in norm.channels)   # [B]
        # linear(signal_norm(y)) computed as signal_norm's scaling applied after the linear:
        # the per-sample divisor and per-degree weight are scalars within a degree, so they
        # commute with channel mixing, and the linear's output is several times narrower than
        # the tensor product's (C vs C * paths), which saves passes over the widest tensor.
        # Same parameters and result as ``self.linear(self.norm(y))``.
        scale = torch.rsqrt(power + norm.eps)[:, None]                              # [B, 1]
        out: Features = {}
        for l in linear.channels_out:
            W = linear.weights[str(l)]
            h = torch.matmul(y[l], W) * (scale * norm.weight[l])
            if l == 0:
                h = h + norm.bias * W.sum(dim=0)     # the signal norm's bias, through the linear
            out[l] = h
        return out

    def runs_fused(self, x) -> bool:
        """The fused path: a channel-wise product the kernel runs, and one output channel count
        (the stacked tail); otherwise :meth:`forward`'s generic path. ``x``: features or their stacked
        tensor."""
        if not isinstance(self.tp, ChannelwiseTensorProduct) or len(set(self.linear.channels_out.values())) != 1:
            return False
        if isinstance(x, torch.Tensor):
            return tuple(x.shape[::2]) == (sum(2 * l + 1 for l in self.tp.degrees_in), self.tp.channels) \
                and self.tp.runs_fused(x)
        return self.tp.runs_fused(x[self.tp.degrees_in[0]])

    def _forward_fused(self, x: Features) -> Features:
        return unstack_features(self.forward_stacked(stack_features({l: x[l] for l in self.tp.degrees_in})),
                                self.linear.channels_out)

    def forward_stacked(self, X: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The block on the fused CPU kernel, stacked in and out:
        ``X [sum_l (2l+1), B, C]`` (the input degrees in order) -> ``[sum_l (2l+1), B, C_out]``
        (the output degrees, from 0), plus ``skip`` where given (:func:`add_skip` on the
        stacked form; degrees from 0 in both). Only where :meth:`runs_fused`. In whole-block
        operations: the batch norm on the stacked degrees, the kernel's per-degree outputs of the nonzero paths with the signal
        power summed in the same pass (the identically zero (l, l) -> odd l3 paths are skipped,
        and with them their weight rows), one matmul per output degree, then the signal norm's
        scale and bias applied to all output degrees at once, and the skip added in place.
        Where torch's MKL gemm can be called from the kernel, the matmuls run inside it chunk by
        chunk, on the square's output while it is in the cache: without autograd it never
        leaves the cache; in training it is copied out once, and the backward makes its gradient
        and the weights' gradients chunk by chunk in the cache
        (:meth:`holovae.nn.fused_cg.BlockSquare.forward_linear`, ``backward_linear``)."""
        norm, linear, tp = self.norm, self.linear, self.tp
        if self.bn is not None:
            X = self.bn.stacked(X)
        degrees = list(linear.channels_out)
        weights = [linear.weights[str(l)] for l in degrees]
        if skip is not None and (degrees[0] != 0 or tp.degrees_in[0] != 0):
            raise ValueError("forward_stacked: a skip needs degrees from 0 in and out")
        rows = [self._nonzero_rows.get(l) for l in degrees]
        one_pass = list(tp.paths_by_l3) == degrees   # the kernel's blocks are the linear's degrees
        if not torch.is_grad_enabled() and one_pass:
            # inference: the square and the linear in one pass, the square's output kept in cache
            products = tp.square_times_weights(X, kept_weight_rows(weights, rows))
            if products is not None:
                H, power = products
                return cg_block_tail_inference(H, power, weights[0] if degrees[0] == 0 else None, norm.weight,
                                               norm.bias, norm.eps, self._output_degree_rows, skip=skip)
        op = tp.linear_op(X) if one_pass else None
        if op is not None:   # training: the square's output gradients made and used in the cache
            return cg_block_square_tail(op, X, weights, rows, degrees, norm.weight, norm.bias, norm.eps,
                                        self._output_degree_rows, skip=skip)
        y, power = tp.square_with_power(X)
        return cg_block_tail([y[l] for l in degrees], power, weights, rows, degrees, norm.weight, norm.bias,
                             norm.eps, self._output_degree_rows, skip=skip)

    @functools.cached_property
    def _output_degree_rows(self) -> torch.Tensor:
        """The degree of every row of the stacked output."""
        return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in self.linear.channels_out])

    @functools.cached_property
    def _nonzero_rows(self) -> dict:
        """Per output degree, the weight rows of the nonzero paths (None: all of them)."""
        C, out = self.tp.channels, {}
        for l3, keep in self.tp.nonzero_paths.items():
            if len(keep) < len(self.tp.paths_by_l3[l3]):
                out[l3] = torch.tensor([k * C + c for k in keep for c in range(C)], dtype=torch.long)
        return out


def add_skip(h_new: Features, h_old: Features) -> Features:
    """Additive skip connection: ``h_new[l] += h_old[l]`` for shared degrees, truncating or
    zero-padding ``h_old``'s channels to ``h_new``'s."""
    out = dict(h_new)
    for l, new in h_new.items():
        old = h_old.get(l)
        if old is None:
            continue
        c_new, c_old = new.shape[-1], old.shape[-1]
        if c_old >= c_new:
            out[l] = new + old[..., :c_new]
        else:
            out[l] = new + torch.nn.functional.pad(old, (0, c_new - c_old))
    return out
