"""The end of a CG block (per-degree linear, then the signal norm's scale and bias) as one
autograd node with a hand-written backward.

``out[l] = (y_l @ W_l[rows_l]) * w[l] * s[b] + [l == 0] * bias * sum_rows W_0``,
``s = rsqrt(power + eps)``, for every output degree ``l`` at once, written into one stacked
``[D_out, B, C_out]`` tensor (``D_out = sum_l (2l+1)``; one channel count ``C_out`` for all
degrees). ``rows_l`` selects the weight rows of the tensor product's nonzero paths (``None``:
all rows): the rows left out multiply identically zero inputs, so their gradient is zero, and
the bias term still sums every row, as in :meth:`holovae.nn.blocks.CGBlock.forward`'s
reference form.

Why by hand: autograd's version of these few lines is ~10 nodes per degree (index, matmul,
scale, bias, concatenation), each a small tensor op whose fixed cost dominates at MNIST's
sizes; here the matmuls write straight into the stacked output and the backward is one pass.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import block_tail_kernel, buffer_pool


def _scale_bias_skip(H: torch.Tensor, power: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     eps: float, owner: torch.Tensor, W0: Optional[torch.Tensor],
                     skip: Optional[torch.Tensor]):
    """``H [D_out, B, C_out]`` (the linear's output) -> the block's output: the signal norm's
    scale ``w[l] * rsqrt(power + eps)``, its bias through degree 0's weight ``W0`` (None: no
    degree 0) and the skip; also returns ``s``, the per-row weights, the factor and the skip's
    shared (rows, channels), which the backward needs."""
    s = torch.rsqrt(power + eps)                                            # [B]
    w_rows = weight.index_select(0, owner)                                  # [D_out]
    factor = w_rows[:, None] * s[None, :]                                   # [D_out, B]
    shift0 = None if W0 is None else bias * W0.sum(dim=0)
    # the additive skip connection: the shared degrees and channels
    shared = None if skip is None else (min(H.shape[0], skip.shape[0]), min(H.shape[2], skip.shape[2]))
    if block_tail_kernel.runs(H):   # one pass (torch's form: a multiply and two adds)
        return block_tail_kernel.scale_bias_skip(H, w_rows, s, shift0, skip, shared), s, w_rows, factor, shared
    out = H * factor[:, :, None]
    if shift0 is not None:
        out[0] += shift0
    if skip is not None:
        out[:shared[0], :, :shared[1]] += skip[:shared[0], :, :shared[1]]
    return out, s, w_rows, factor, shared


def cg_block_tail_inference(H: torch.Tensor, power: torch.Tensor, W0: Optional[torch.Tensor],
                            weight: torch.Tensor, bias: torch.Tensor, eps: float, owner: torch.Tensor,
                            skip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`cg_block_tail` after the linear, without autograd: ``H [D_out, B, C_out]`` holds
    every degree's ``y_l @ W_l[rows_l]`` (as :meth:`holovae.nn.fused_cg.BlockSquare.forward_linear`
    returns it); ``W0``: degree 0's whole weight (for the bias; None when the output has no
    degree 0)."""
    return _scale_bias_skip(H, power, weight, bias, eps, owner.to(power.device), W0, skip)[0]


def kept_weight_rows(Ws: Sequence[torch.Tensor], rows: Sequence[Optional[torch.Tensor]]) -> list[torch.Tensor]:
    """``W_l[rows_l]`` (the rows of the nonzero paths; all of ``W_l`` where ``rows_l`` is None),
    contiguous, per output degree."""
    return [(W if r is None else W.index_select(0, r)).contiguous() for W, r in zip(Ws, rows)]


def _products(ys, Ws, rows, sizes, power):
    """``H [D_out, B, C_out]``: every degree's ``y_l @ W_l[rows_l]``, and the ``W_l[rows_l]``."""
    B, c_out = power.shape[0], Ws[0].shape[1]
    H = buffer_pool.take((sum(sizes), B, c_out), power.dtype) if power.device.type == "cpu" \
        else power.new_empty(sum(sizes), B, c_out)                          # before the scale
    Wks, off = kept_weight_rows(Ws, rows), 0
    for d, y, Wk in zip(sizes, ys, Wks):
        target = H[off:off + d].view(d * B, c_out)
        if y.shape[-1]:
            torch.mm(y.reshape(d * B, -1), Wk, out=target)
        else:
            target.zero_()
        off += d
    return H, Wks


def _grads_before_linear(g, degrees, weight, bias, s, w_rows, factor, H, W0, owner):
    """From the output's gradient ``g``: the power's, the signal norm's weight and bias's, and
    ``dH`` (the gradient of the linear's output); ``g0_sum`` for degree 0's weight."""
    if block_tail_kernel.runs(H):   # one pass for both (torch's form: three)
        dH, dfactor = block_tail_kernel.grads(g, H, w_rows, s)
    else:
        dfactor = torch.linalg.vecdot(g, H)                                 # [D_out, B]
        dH = g * factor[:, :, None]
    ds = w_rows @ dfactor                                                   # [B]
    dw_rows = dfactor @ s                                                   # [D_out]
    d_power = ds * (-0.5) * s.pow(3)
    d_weight = torch.zeros_like(weight).index_add_(0, owner, dw_rows)
    d_bias = g0_sum = None
    if degrees[0] == 0:
        g0_sum = g[0].sum(dim=0)                                           # [C_out]
        d_bias = (g0_sum @ W0.sum(dim=0)).reshape(bias.shape)
    return d_power, d_weight, d_bias, dH, g0_sum


def _weight_grads(dH, ys, Ws, Wks, rows, sizes, bias, g0_sum, d_ys=None, dWks=None):
    """The weights' gradients ``y_l^T dH_l`` (rows of the vanishing paths zero, degree 0's bias
    term added); where ``d_ys`` is given, also ``dH_l @ W_l[rows_l]^T`` into it; where ``dWks``
    (the products ``y_l^T dH_l`` made elsewhere) is given, those instead of the matmuls."""
    B, c_out = dH.shape[1], dH.shape[2]
    d_Ws, off = [], 0
    for k, (d, y, W, Wk, r) in enumerate(zip(sizes, ys, Ws, Wks, rows)):
        dh = dH[off:off + d].view(d * B, c_out)
        off += d
        if y.shape[-1]:
            if d_ys is not None:
                torch.mm(dh, Wk.t(), out=d_ys[k].view(d * B, -1))
            dWk = torch.mm(y.reshape(d * B, -1).t(), dh) if dWks is None else dWks[k]
            dW = dWk if r is None else W.new_zeros(W.shape).index_copy_(0, r, dWk)
        else:
            dW = torch.zeros_like(W)
        if k == 0 and g0_sum is not None:
            dW = dW + bias * g0_sum[None, :]
        d_Ws.append(dW)
    return d_Ws


def _skip_grad(g, shared, skip_shape):
    if shared is None:
        return None
    part = g[:shared[0], :, :shared[1]]
    if tuple(part.shape) == tuple(skip_shape):
        return part
    d_skip = g.new_zeros(skip_shape)
    d_skip[:shared[0], :, :shared[1]] = part
    return d_skip


class _CGBlockTail(torch.autograd.Function):
    @staticmethod
    def forward(ctx, meta, power, weight, bias, skip, *tensors):
        degrees, rows, eps, owner = meta
        n = len(degrees)
        ys, Ws = tensors[:n], tensors[n:]
        sizes = [2 * l + 1 for l in degrees]
        H, Wks = _products(ys, Ws, rows, sizes, power)
        out, s, w_rows, factor, shared = _scale_bias_skip(H, power, weight, bias, eps, owner,
                                                          Ws[0] if degrees[0] == 0 else None, skip)
        ctx.meta = (degrees, rows, sizes, owner, shared, None if skip is None else skip.shape)
        ctx.save_for_backward(weight, bias, s, w_rows, factor, H, *ys, *Ws, *Wks)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        degrees, rows, sizes, owner, shared, skip_shape = ctx.meta
        n = len(degrees)
        weight, bias, s, w_rows, factor, H, *rest = ctx.saved_tensors
        ys, Ws, Wks = rest[:n], rest[n:2 * n], rest[2 * n:]
        g = g.contiguous()
        d_power, d_weight, d_bias, dH, g0_sum = _grads_before_linear(g, degrees, weight, bias, s, w_rows,
                                                                     factor, H, Ws[0], owner)
        # the gradients of the tensor product's outputs, the biggest tensors of the backward, go
        # into reused buffers (a fresh one costs a page fault per 4 KiB the matmul writes)
        d_ys = buffer_pool.take_split([y.shape for y in ys], g.dtype) if g.device.type == "cpu" \
            else [torch.empty_like(y) for y in ys]
        d_Ws = _weight_grads(dH, ys, Ws, Wks, rows, sizes, bias, g0_sum, d_ys)
        return (None, d_power, d_weight, d_bias, _skip_grad(g, shared, skip_shape), *d_ys, *d_Ws)


class _CGBlockSquareTail(torch.autograd.Function):
    """The kernel's square, the linear and the tail as one node, for training. The forward
    multiplies the square by the weights chunk by chunk in the cache
    (:meth:`~holovae.nn.fused_cg.BlockSquare.forward_linear`, keeping the square for the
    backward); the backward hands ``dH`` and the weights to
    :meth:`~holovae.nn.fused_cg.BlockSquare.backward_linear`, which makes the square's output
    gradients and the weights' gradients chunk by chunk in the cache, reading the kept square
    once."""

    @staticmethod
    def forward(ctx, meta, op, X, weight, bias, skip, *Ws):
        degrees, rows, eps, owner = meta
        X = X.contiguous()
        sizes = [2 * l + 1 for l in degrees]
        Wks = kept_weight_rows(Ws, rows)
        H, power, ys = op.forward_linear(X, Wks, keep_square=True)
        out, s, w_rows, factor, shared = _scale_bias_skip(H, power, weight, bias, eps, owner,
                                                          Ws[0] if degrees[0] == 0 else None, skip)
        ctx.meta = (op, degrees, rows, sizes, owner, shared, None if skip is None else skip.shape)
        ctx.save_for_backward(X, weight, bias, s, w_rows, factor, H, *ys, *Ws, *Wks)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        op, degrees, rows, sizes, owner, shared, skip_shape = ctx.meta
        n = len(degrees)
        X, weight, bias, s, w_rows, factor, H, *rest = ctx.saved_tensors
        ys, Ws, Wks = rest[:n], rest[n:2 * n], rest[2 * n:]
        g = g.contiguous()
        d_power, d_weight, d_bias, dH, g0_sum = _grads_before_linear(g, degrees, weight, bias, s, w_rows,
                                                                     factor, H, Ws[0], owner)
        # dX comes with the weights' gradients even where X needs none (a block fed by data):
        # the kernel's pass over the square is what makes them
        dX, dWks = op.backward_linear(dH, Wks, d_power, X, ys, weight_grads=True)
        d_Ws = _weight_grads(dH, ys, Ws, Wks, rows, sizes, bias, g0_sum, dWks=dWks)
        return (None, None, dX if ctx.needs_input_grad[2] else None, d_weight, d_bias,
                _skip_grad(g, shared, skip_shape), *d_Ws)


def cg_block_tail(ys: Sequence[torch.Tensor], power: torch.Tensor, weights: Sequence[torch.Tensor],
                  rows: Sequence[Optional[torch.Tensor]], degrees: Sequence[int], weight: torch.Tensor,
                  bias: torch.Tensor, eps: float, owner: torch.Tensor,
                  skip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``ys``: ``[2l+1, B, K_l]`` per output degree (ascending), ``power [B]``, ``weights``:
    ``W_l [P_l*C, C_out]``, ``rows``: the rows of ``W_l`` that ``y_l``'s channels meet (or
    None), ``weight [lmax+1]`` / ``bias [1]``: the signal norm's; ``owner``: the degree of every
    stacked output row -> ``[D_out, B, C_out]``.

    ``skip`` (optional, ``[D_skip, B, C_skip]``, degrees 0, 1, ... stacked like the output):
    added to the output where the two overlap (the shared degrees, the first
    ``min(C_out, C_skip)`` channels), which is :func:`holovae.nn.blocks.add_skip` (truncate or
    zero-pad the channels) on the stacked form."""
    meta = (tuple(int(l) for l in degrees), tuple(rows), float(eps), owner.to(power.device))
    return _CGBlockTail.apply(meta, power, weight, bias, skip, *ys, *weights)


def cg_block_square_tail(op, X: torch.Tensor, weights: Sequence[torch.Tensor],
                         rows: Sequence[Optional[torch.Tensor]], degrees: Sequence[int],
                         weight: torch.Tensor, bias: torch.Tensor, eps: float, owner: torch.Tensor,
                         skip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`cg_block_tail` of ``op``'s square of ``X`` (a :class:`holovae.nn.fused_cg.BlockSquare`
    whose blocks are ``degrees``, ascending; ``X [D_in, B, C]``) as one autograd node, whose
    backward never writes the square's output gradients to memory (``op.runs_linear()``
    needed). Same result and gradients as ``cg_block_tail(*block_square(op, X), ...)``."""
    meta = (tuple(int(l) for l in degrees), tuple(rows), float(eps), owner.to(X.device))
    return _CGBlockSquareTail.apply(meta, op, X, weight, bias, skip, *weights)
