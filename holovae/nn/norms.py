"""Equivariant normalisations: batch norm and signal norm, as the H-(V)AE authors defined them."""
from __future__ import annotations

from typing import Mapping, Optional

import torch

from .. import distributed as _dist
from ..so3.irreps import Features
from . import batch_norm_kernel as bn_kernel


class SO3BatchNorm(torch.nn.Module):
    """Batch norm of steerable features ``{l: [2l+1, B, C_l]}``.

    Scalars are mean-centred; every (l, channel) is divided by the root of its component-mean
    square (batch statistics in training, running ones with ``momentum`` in evaluation).
    Affine: a weight per (l, channel), a bias on scalars only (a bias on l > 0 would not be
    equivariant).

    Synchronised across processes: in training, when a ``torch.distributed`` process group of
    several processes exists (data-parallel training, :mod:`holovae.distributed`), the batch
    statistics are those of the global batch (every process's shard), all-reduced with
    gradients, so the output equals the single-process output on the concatenated batch.
    ``sync_stats``: ``None`` (default) decides so automatically, ``False`` keeps per-process
    statistics. Without a process group the forward is the plain single-process one.
    """

    def __init__(self, channels: Mapping[int, int], momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.channels = dict(channels)
        self.momentum, self.eps = momentum, eps
        self.weights = torch.nn.ParameterDict({str(l): torch.nn.Parameter(torch.ones(c)) for l, c in self.channels.items()})
        if 0 in self.channels:
            self.bias = torch.nn.Parameter(torch.zeros(self.channels[0]))
            self.register_buffer("running_mean", torch.zeros(self.channels[0]))
        for l, c in self.channels.items():
            self.register_buffer(f"running_var_{l}", torch.ones(c))
        self.sync_stats: Optional[bool] = None

    def forward(self, x: Features) -> Features:
        if self.training and self.sync_stats is not False and _dist.active():
            return self._forward_synchronised(x)
        out: Features = {}
        for l in self.channels:
            h = x[l]
            if l == 0:
                if self.training:
                    mean = h.mean(dim=(0, 1))
                    with torch.no_grad():
                        self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                else:
                    mean = self.running_mean.to(h.dtype)
                h = h - mean
            var_buf = getattr(self, f"running_var_{l}")
            if self.training:
                var = h.pow(2).mean(dim=(0, 1))
                with torch.no_grad():
                    var_buf.lerp_(var.detach().to(var_buf.dtype), self.momentum)
            else:
                var = var_buf.to(h.dtype)
            h = h * (torch.rsqrt(var + self.eps) * self.weights[str(l)])
            if l == 0:
                h = h + self.bias
            out[l] = h
        return out

    def stacked(self, x) -> torch.Tensor:
        """The same normalisation, returned stacked: ``[sum_l (2l+1), B, C]`` with the degrees in
        increasing order (all degrees must have the same channel count C). ``x``: features, or
        already stacked that way.

        One pass of a dozen whole-block operations instead of a dozen per degree: the per-degree
        statistics are segment sums over the stacked rows, the scale of each row is gathered from
        its degree's. Same statistics, running averages and result as :meth:`forward`; this is
        the layout the fused CG kernel reads (:class:`holovae.nn.fused_cg.BlockSquare`)."""
        degrees = sorted(self.channels)
        widths = {self.channels[l] for l in degrees}
        if len(widths) != 1:
            raise ValueError(f"stacked batch norm needs equal channels per degree, got {self.channels}")
        sizes = tuple(2 * l + 1 for l in degrees)
        if isinstance(x, torch.Tensor):
            C = next(iter(widths))
            if x.dim() != 3 or x.shape[0] != sum(sizes) or x.shape[2] != C:
                raise ValueError(f"stacked batch norm: expected [{sum(sizes)}, B, {C}] (degrees {degrees}), "
                                 f"got {tuple(x.shape)}")
            X = x
        else:
            X = torch.cat([x[l] for l in degrees], dim=0)                   # [D, B, C]
        if self.training and self.sync_stats is not False and _dist.active():
            out = self._forward_synchronised(dict(zip(degrees, X.split(sizes, dim=0))))
            return torch.cat([out[l] for l in degrees], dim=0)
        owner = self._rows(tuple(degrees), X.device)
        has0 = degrees[0] == 0
        W = torch.stack([self.weights[str(l)] for l in degrees])            # [L, C]
        bias = self.bias if has0 else W.new_zeros(())
        if self.training:
            stats = None
        else:
            stats = (self.running_mean.to(X.dtype) if has0 else None,
                     torch.stack([getattr(self, f"running_var_{l}") for l in degrees]).to(X.dtype))
        out, mean, var = _StackedBatchNorm.apply((owner, sizes, has0, self.eps, stats), X, W, bias)
        if self.training:
            with torch.no_grad():
                if has0:
                    self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
                bufs = [getattr(self, f"running_var_{l}") for l in degrees]
                torch._foreach_lerp_(bufs, [v.to(bufs[0].dtype) for v in var.unbind(0)], self.momentum)
        return out

    def _rows(self, degrees: tuple, device) -> torch.Tensor:
        """Index (into ``degrees``) of the degree of every stacked row, cached per device."""
        cache = self.__dict__.setdefault("_row_cache", {})
        key = (degrees, str(device))
        if key not in cache:
            cache[key] = torch.cat([torch.full((2 * l + 1,), k, dtype=torch.long)
                                    for k, l in enumerate(degrees)]).to(device)
        return cache[key]

    def _forward_synchronised(self, x: Features) -> Features:
        """Training forward with the global batch's statistics: one differentiable all-reduce of
        ``[B, sum(h0 - K), sum((h0 - K)^2), sum(h_l^2) for l > 0]`` (float32 at least). The
        scalars are shifted by ``K`` = the running mean (identical on every process) so that
        ``E[(h0-K)^2] - E[h0-K]^2`` does not cancel catastrophically."""
        degrees = list(self.channels)
        first = x[degrees[0]]
        dtype = torch.float64 if first.dtype == torch.float64 else torch.float32
        parts = [torch.full((1,), float(first.shape[1]), dtype=dtype, device=first.device)]
        shift = None
        for l in degrees:
            h = x[l].to(dtype)
            if l == 0:
                shift = self.running_mean.detach().to(dtype).clone()
                d = h - shift
                parts += [d.sum(dim=(0, 1)), d.pow(2).sum(dim=(0, 1))]
            else:
                parts.append(h.pow(2).sum(dim=(0, 1)))
        tot = _dist.differentiable_all_reduce_sum(torch.cat(parts))
        n = tot[0].detach()               # global batch size
        out: Features = {}
        i = 1
        for l in degrees:
            c = self.channels[l]
            h = x[l]
            count = n * (2 * l + 1)
            var_buf = getattr(self, f"running_var_{l}")
            if l == 0:
                m1 = tot[i:i + c] / count
                m2 = tot[i + c:i + 2 * c] / count
                i += 2 * c
                mean = shift + m1
                var = (m2 - m1 * m1).clamp_min(0)
                with torch.no_grad():
                    self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                h = h - mean.to(h.dtype)
            else:
                var = tot[i:i + c] / count
                i += c
            with torch.no_grad():
                var_buf.lerp_(var.detach().to(var_buf.dtype), self.momentum)
            h = h * (torch.rsqrt(var + self.eps).to(h.dtype) * self.weights[str(l)])
            if l == 0:
                h = h + self.bias
            out[l] = h
        return out


class _StackedBatchNorm(torch.autograd.Function):
    """:meth:`SO3BatchNorm.stacked`'s normalisation as one autograd node (the closed-form batch
    norm backward, per degree): ``X [D, B, C]`` -> ``(out [D, B, C], mean [C] | None, var [L, C])``.
    ``meta = (owner [D], sizes, has0, eps, stats)``; ``stats`` = (running mean, running var) in
    evaluation, None in training (batch statistics; mean and var are returned for the running
    averages)."""

    @staticmethod
    def forward(ctx, meta, X, W, bias):
        owner, sizes, has0, eps, stats = meta
        C = X.shape[2]
        kernel = bn_kernel.runs(X)
        if stats is None:
            row_sq = bn_kernel.sq_sums(X) / X.shape[1] if kernel else X.pow(2).mean(dim=1)   # [D, C]
            mean = None
            if has0:
                mean = X[0].mean(dim=0)                                     # [C]
                row_sq[0] = (X[0] - mean).pow(2).mean(dim=0)
            n = torch.tensor(sizes, dtype=X.dtype, device=X.device)[:, None]
            var = X.new_zeros(len(sizes), C).index_add_(0, owner, row_sq) / n
        else:
            mean, var = stats
        r = torch.rsqrt(var + eps)                                          # [L, C]
        a_rows = (r * W).index_select(0, owner)                             # [D, C]
        if kernel:
            out = bn_kernel.scale(X, a_rows, bias - mean * a_rows[0] if has0 else None)
        else:
            out = X * a_rows[:, None, :]
            if has0:
                out[0] += bias - mean * a_rows[0]
        ctx.meta = (owner, sizes, has0, stats is None)
        ctx.save_for_backward(X, W, r, a_rows, mean if has0 else None)
        if mean is not None:
            ctx.mark_non_differentiable(mean, var)
        else:
            ctx.mark_non_differentiable(var)
        return out, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g, _gmean, _gvar):
        owner, sizes, has0, batch_stats = ctx.meta
        X, W, r, a_rows, mean = ctx.saved_tensors
        B = X.shape[1]
        if bn_kernel.runs(X):
            return _StackedBatchNorm._backward_kernel(g, X, W, r, a_rows, mean, owner, sizes, has0, batch_stats)
        xhat = X * r.index_select(0, owner)[:, None, :]
        if has0:
            xhat[0] = (X[0] - mean) * r[0]
        gx = (g * xhat).sum(dim=1)                                          # [D, C]
        G = torch.zeros_like(W).index_add_(0, owner, gx)                   # [L, C]: sum over (m, b)
        d_W = G
        d_bias = g[0].sum(dim=0) if has0 else None                          # [C]
        if not batch_stats:   # evaluation: a fixed affine map
            return None, g * a_rows[:, None, :], d_W, d_bias
        n = torch.tensor(sizes, dtype=X.dtype, device=X.device)[:, None] * B
        coef = (G / n).index_select(0, owner)                               # [D, C]
        dX = a_rows[:, None, :] * (g - xhat * coef[:, None, :])
        if has0:
            dX[0] -= a_rows[0] * g[0].mean(dim=0)
        return None, dX, d_W, d_bias

    @staticmethod
    def _backward_kernel(g, X, W, r, a_rows, mean, owner, sizes, has0, batch_stats):
        # the same algebra without xhat = X * r (degree 0: (X - mean) * r): two passes
        B = X.shape[1]
        r_rows = r.index_select(0, owner)                                   # [D, C]
        gX, g0_sum = bn_kernel.grad_sums(g, X)                              # sum_b g X, sum_b g[0]
        gx = gX * r_rows                                                    # sum_b g xhat
        if has0:
            gx[0] = (gX[0] - mean * g0_sum) * r[0]
        G = torch.zeros_like(W).index_add_(0, owner, gx)                   # [L, C]: sum over (m, b)
        d_bias = g0_sum if has0 else None
        if not batch_stats:   # evaluation: a fixed affine map
            return None, bn_kernel.scale(g, a_rows), G, d_bias
        n = torch.tensor(sizes, dtype=X.dtype, device=X.device)[:, None] * B
        k = a_rows * r_rows * (G / n).index_select(0, owner)               # a r coef
        # dX = a (g - xhat coef) [- a mean_b g on degree 0] = a g - k X [+ k mean - a mean_b g]
        corr0 = k[0] * mean - a_rows[0] * (g0_sum / B) if has0 else None
        return None, bn_kernel.grad_scale(g, X, a_rows, k, corr0), G, d_bias


class SignalNorm(torch.nn.Module):
    """Per-sample normalisation by the total power of the signal.

    ``x_l <- w_l * x_l / sqrt(sum_l sum_c mean_m x_l^2 + eps)``, plus one learned scalar added to
    every l = 0 channel. Rotations preserve each degree's power, so the divisor is invariant.
    """

    def __init__(self, channels: Mapping[int, int], eps: float = 1e-8):
        super().__init__()
        self.channels = dict(channels)
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(max(self.channels) + 1))
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: Features) -> Features:
        power = sum(x[l].pow(2).mean(dim=0).sum(dim=-1) for l in self.channels)  # [B]
        scale = torch.rsqrt(power + self.eps)[:, None]
        out = {l: x[l] * (scale * self.weight[l]) for l in self.channels}
        if 0 in out:
            out[0] = out[0] + self.bias
        return out
