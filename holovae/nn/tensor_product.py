"""Clebsch-Gordan tensor products of a steerable tensor with itself (the H-(V)AE nonlinearity).

Implementations of the same channel-wise product (:data:`IMPLEMENTATIONS`, the model key
``tp_implementation``):

* ``"reference"``: one dense einsum per (l1, l2, l3) path, as the authors computed it. Kept
  as the test oracle and the benchmark baseline.
* ``"fused"``: the sparse form of :mod:`holovae.nn.cg_entries`, run by a small fused C kernel
  (:mod:`holovae.nn.fused_cg`; CPU only);
* ``"sparse"``: the same sparse form as a pure-torch pair-gather + CSR matmul (any device);
* ``"auto"`` (default): ``"fused"`` on CPU when the kernel builds, else ``"sparse"``.

``"fused"`` and ``"sparse"`` have hand-written backward passes.

The channel-mixing ("full") product of the Table S8 ablation uses the reference algorithm.
"""
from __future__ import annotations

import functools
import logging
import warnings
from typing import Mapping

import torch

from ..so3.harmonics import clebsch_gordan
from ..so3.irreps import Features
from .cg_entries import CGEntries, cg_square_entries
from .paths import efficient_paths, full_paths, paths_per_degree

log = logging.getLogger(__name__)

IMPLEMENTATIONS = ("auto", "fused", "sparse", "reference")


class _TorchSparseSquare:
    """Pair-gather + CSR matmul form of the CG square (any device)."""

    def __init__(self, e: CGEntries, device: torch.device, dtype: torch.dtype):
        pairs, pair_id = torch.unique(torch.stack([e.i, e.j]), dim=1, return_inverse=True)
        self.pi = pairs[0].to(device)
        self.pj = pairs[1].to(device)
        n_pairs = pairs.shape[1]
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            S = torch.sparse_coo_tensor(torch.stack([e.row, pair_id]), e.val.to(dtype), (e.n_out, n_pairs),
                                        check_invariants=True).coalesce()
            self.S = S.to_sparse_csr().to(device)
            self.St = S.t().coalesce().to_sparse_csr().to(device)
        self.n_in = e.n_in

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.S, X[self.pi] * X[self.pj])

    def backward(self, dY: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        dP = torch.sparse.mm(self.St, dY)
        dX = torch.zeros_like(X)
        dX.index_add_(0, self.pi, dP * X[self.pj])
        dX.index_add_(0, self.pj, dP * X[self.pi])
        return dX


class _FusedSquare:
    """The C kernel's form of the CG square (CPU, float32/float64)."""

    def __init__(self, e: CGEntries, dtype: torch.dtype):
        from . import fused_cg
        self.kernel = fused_cg
        self.e = e
        self.val = e.val.to(dtype)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.kernel.cg_square_forward(X, self.e.row, self.e.i, self.e.j, self.val, self.e.n_out)

    def backward(self, dY: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return self.kernel.cg_square_backward(dY, X, self.e.row, self.e.i, self.e.j, self.val)


class _CGSquareFunction(torch.autograd.Function):
    """``X [D_in, B*C]`` -> one ``[2l3+1, B, k*C]`` tensor per output degree.

    The output rows of the kernel are ordered (path, m); the model wants (m, batch, path *
    channel). Doing that reordering here, with a hand-written backward, costs one copy each
    way; autograd's own slice/permute backward cost a zero-filled full-size gradient per
    degree plus two copies, more than the kernel itself.
    """

    @staticmethod
    def forward(ctx, X, op, blocks, B, C):
        ctx.save_for_backward(X)
        ctx.op, ctx.blocks, ctx.B, ctx.C = op, blocks, B, C
        Y = op.forward(X)
        outs, row = [], 0
        for k, d in blocks:
            block = Y[row:row + k * d].view(k, d, B, C)
            outs.append(block.permute(1, 2, 0, 3).reshape(d, B, k * C))
            row += k * d
        return tuple(outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        (X,) = ctx.saved_tensors
        B, C = ctx.B, ctx.C
        dY = X.new_empty(sum(k * d for k, d in ctx.blocks), B * C)
        row = 0
        for (k, d), g in zip(ctx.blocks, grads):
            target = dY[row:row + k * d].view(k, d, B, C)
            if g is None:
                target.zero_()
            else:
                target.copy_(g.reshape(d, B, k, C).permute(2, 0, 1, 3))
            row += k * d
        return ctx.op.backward(dY, X), None, None, None, None


def fused_kernel_available() -> bool:
    try:
        from . import fused_cg
    except ImportError as exc:  # pragma: no cover - only when the module itself is broken
        log.warning("fused CG kernel unavailable (%s); using the torch sparse path", exc)
        return False
    return fused_cg.available()


class ChannelwiseTensorProduct(torch.nn.Module):
    """Channel-wise CG tensor square ``x ⊗ x`` restricted to a set of paths.

    Input ``{l: [2l+1, B, C]}`` (the same C for every degree) -> output
    ``{l3: [2l3+1, B, C * n_paths(l3)]}``, output channel ``p * C + c`` being path ``p``
    (ordered by l1, l2) of channel ``c``.

    ``rule``: ``"efficient"`` (MST pairs + all (l, l) pairs, the paper's ETP) or ``"full"``
    (all pairs, channel-wise). ``implementation``: ``"auto"`` (fused C kernel on CPU when it
    builds, else torch sparse), ``"fused"``, ``"sparse"`` or ``"reference"``.
    """

    def __init__(self, channels: int, degrees_in: tuple[int, ...], lmax_out: int,
                 rule: str = "efficient", implementation: str = "auto"):
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        if rule not in ("efficient", "full"):
            raise ValueError(f"rule must be 'efficient' or 'full', got {rule!r}")
        self.channels = int(channels)
        self.degrees_in = tuple(sorted(degrees_in))
        self.lmax_out = int(lmax_out)
        self.rule = rule
        self.implementation = implementation
        self.paths = (efficient_paths if rule == "efficient" else full_paths)(self.degrees_in, self.lmax_out)
        self.paths_by_l3 = paths_per_degree(self.paths)
        self.channels_out = {l3: self.channels * len(p) for l3, p in sorted(self.paths_by_l3.items())}
        self._entries = cg_square_entries(self.degrees_in, self.paths)
        self._ops: dict = {}

    # -- the square as the CG block consumes it ----------------------------------------------
    @functools.cached_property
    def nonzero_paths(self) -> dict[int, list[int]]:
        """Per output degree, the indices (into ``paths_by_l3[l3]``) of the paths whose output
        is not identically zero. A channel-wise ``(l, l) -> l3`` path with odd ``l3`` is
        antisymmetric in its two (equal) factors and vanishes: ~19% of the output channels of
        the paper's models, which the CG block's linear layer need not multiply."""
        used = set(self._entries.row.tolist())
        out, row0 = {}, 0
        for l3, paths in self.paths_by_l3.items():
            d = 2 * l3 + 1
            out[l3] = [k for k in range(len(paths)) if any(r in used for r in range(row0 + k * d, row0 + (k + 1) * d))]
            row0 += d * len(paths)
        return out

    def _block_square(self, dtype: torch.dtype):
        key = ("blocks", dtype)
        if key not in self._ops:
            from . import fused_cg
            keep = []
            for l3, paths in self.paths_by_l3.items():
                nz = set(self.nonzero_paths[l3])
                keep += [k in nz for k in range(len(paths)) for _ in range(2 * l3 + 1)]
            keep = torch.tensor(keep, dtype=torch.bool)
            new_row = torch.cumsum(keep.long(), 0) - 1          # old output row -> kept row
            e = self._entries
            blocks = tuple((2 * l3 + 1, len(self.nonzero_paths[l3])) for l3 in self.paths_by_l3)
            self._ops[key] = fused_cg.BlockSquare(new_row[e.row], e.i, e.j, e.val, self.degrees_in,
                                                  blocks, self.channels, dtype)
        return self._ops[key]

    def square_with_power(self, x: Features):
        """The square of the nonzero paths and the signal power, for :class:`~holovae.nn.blocks.CGBlock`.

        ``{l: [2l+1, B, C]}`` (or those stacked: ``[sum_l (2l+1), B, C]``, degrees in order) -> (``{l3: [2l3+1, B, C * len(nonzero_paths[l3])]}``, ``power [B]``
        = ``sum_l3 sum_{m,c} y_l3^2 / (2l3+1)``), or ``None`` where the fused CPU kernel does not
        run (other implementation or device, or a dtype it lacks): then use :meth:`forward`.
        """
        X = x if isinstance(x, torch.Tensor) else torch.cat([x[l] for l in self.degrees_in], dim=0)
        if not self.runs_fused(X):
            return None
        from . import fused_cg
        ys, power = fused_cg.block_square(self._block_square(X.dtype), X)
        return dict(zip(self.paths_by_l3, ys)), power

    def square_times_weights(self, X: torch.Tensor, weights):
        """Inference: ``X`` (stacked degrees, as :meth:`square_with_power`), ``weights``: per
        output degree ``l3`` (ascending) ``W [C * len(nonzero_paths[l3]), C_out]`` -> (``H [sum_l3
        (2l3+1), B, C_out]``, ``y_l3 @ W`` stacked, ``power [B]``) with no autograd and the square's
        output never written to memory (:meth:`holovae.nn.fused_cg.BlockSquare.forward_linear`),
        or ``None`` where that kernel does not run: then use :meth:`square_with_power`."""
        op = self.linear_op(X)
        if op is None:
            return None
        return op.forward_linear(X.contiguous(), [w.to(X.dtype).contiguous() for w in weights])

    def linear_op(self, X: torch.Tensor):
        """The kernel's :class:`~holovae.nn.fused_cg.BlockSquare` for features like ``X`` (stacked),
        when it runs with the linear in the same pass (``forward_linear``/``backward_linear``:
        the fused CPU kernel and torch's MKL gemm), else None."""
        if not self.runs_fused(X):
            return None
        op = self._block_square(X.dtype)
        return op if op.runs_linear() else None

    def runs_fused(self, t: torch.Tensor) -> bool:
        """Whether features like ``t`` (device, dtype) go through the fused CPU kernel."""
        return self.implementation in ("auto", "fused") and t.device.type == "cpu" \
            and t.dtype in (torch.float32, torch.float64) and fused_kernel_available()

    # -- implementations -------------------------------------------------------------------
    def _op(self, device: torch.device, dtype: torch.dtype):
        impl = self.implementation
        if impl == "auto":
            impl = "fused" if device.type == "cpu" and fused_kernel_available() else "sparse"
        if impl == "fused" and (device.type != "cpu" or not fused_kernel_available()):
            raise RuntimeError("the fused CG kernel runs on CPU only and must have compiled; use implementation='sparse'")
        key = (impl, device, dtype)
        if key not in self._ops:
            self._ops[key] = _FusedSquare(self._entries, dtype) if impl == "fused" else \
                _TorchSparseSquare(self._entries, device, dtype)
        return self._ops[key]

    def forward(self, x: Features) -> Features:
        if self.implementation == "reference":
            return self._forward_reference(x)
        first = x[self.degrees_in[0]]
        B, C = first.shape[1], first.shape[2]
        X = torch.cat([x[l] for l in self.degrees_in], dim=0).reshape(-1, B * C)
        op = self._op(X.device, X.dtype)
        blocks = tuple((len(p), 2 * l3 + 1) for l3, p in self.paths_by_l3.items())
        outs = _CGSquareFunction.apply(X.contiguous(), op, blocks, B, C)
        return dict(zip(self.paths_by_l3, outs))

    def _forward_reference(self, x: Features) -> Features:
        # The authors' algorithm: per (l1, l2) pair, the outer product of the two degrees, then
        # one dense CG contraction (a matmul) per output degree l3.
        B, C = x[self.degrees_in[0]].shape[1:]
        parts: dict[int, dict] = {l3: {} for l3 in self.paths_by_l3}
        pairs: dict[tuple[int, int], list[int]] = {}
        for l1, l2, l3 in self.paths:
            pairs.setdefault((l1, l2), []).append(l3)
        for (l1, l2), l3s in pairs.items():
            outer = (x[l1][:, None] * x[l2][None]).reshape(-1, B * C)          # [(2l1+1)(2l2+1), B*C]
            for l3 in l3s:
                cg = clebsch_gordan(l1, l2, l3, dtype=outer.dtype, device=outer.device)
                parts[l3][(l1, l2)] = (cg.reshape(-1, 2 * l3 + 1).T @ outer).reshape(2 * l3 + 1, B, C)
        return {l3: torch.cat([parts[l3][(l1, l2)] for l1, l2, _ in paths], dim=2)
                for l3, paths in self.paths_by_l3.items()}

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, degrees_in={self.degrees_in}, lmax_out={self.lmax_out}, "
                f"rule={self.rule}, paths={len(self.paths)}, implementation={self.implementation}")


class FullTensorProduct(torch.nn.Module):
    """Channel-mixing CG tensor square (every channel pair), Table S8's "Full-TP" ablation.

    Input ``{l: [2l+1, B, C_l]}`` -> ``{l3: [2l3+1, B, sum_paths C_l1 * C_l2]}`` over all
    triangle-allowed paths with l1 <= l2 and every ordered channel pair, as the authors did:
    for l1 == l2 the pairs (c1, c2) and (c2, c1) are redundant (equal up to sign), but keeping
    them is what gives the paper's parameter counts (Table S8: 229,045 for the 5-block MNIST
    model vs the paper's 229k; the symmetric-only product would have 198k).
    """

    def __init__(self, channels_in: Mapping[int, int], lmax_out: int):
        super().__init__()
        self.channels_in = dict(channels_in)
        self.paths = full_paths(tuple(sorted(self.channels_in)), lmax_out)
        self.paths_by_l3 = paths_per_degree(self.paths)
        self.channels_out = {}
        for l3, paths in sorted(self.paths_by_l3.items()):
            self.channels_out[l3] = sum(self.channels_in[l1] * self.channels_in[l2] for l1, l2, _ in paths)

    def forward(self, x: Features) -> Features:
        out: Features = {}
        for l3, paths in self.paths_by_l3.items():
            parts = []
            for l1, l2, _ in paths:
                cg = clebsch_gordan(l1, l2, l3, dtype=x[l1].dtype, device=x[l1].device)
                y = torch.einsum("mbc,nbd,mnk->kbcd", x[l1], x[l2], cg)
                parts.append(y.reshape(y.shape[0], y.shape[1], -1))
            out[l3] = torch.cat(parts, dim=2)
        return out
