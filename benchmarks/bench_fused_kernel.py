"""Fused C kernel of the CG tensor square (forward + backward) vs the torch pair-gather form.

Baseline ("torch sparse"): ``P = X[pi] * X[pj]; Y = S @ P`` with ``S`` a CSR matrix
``[D_out, n_pairs]`` and, backward, ``dP = S^T @ dY; dX = index_add(dP * X[pj]) + ...``.
Both sides allocate their outputs; the sparse matrices / kernel plans are built before timing.

    python benchmarks/bench_fused_kernel.py [--dtype float64] [--threads N] [--quick]
"""
from __future__ import annotations

import argparse
import warnings

import torch

from holovae.nn import fused_cg

try:
    from ._common import per_second, record
except ImportError:  # run as a script
    from _common import per_second, record


def random_entries(d_in: int, nnz: int, d_out: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    row = torch.randint(0, d_out, (nnz,), generator=g).sort().values
    i = torch.randint(0, d_in, (nnz,), generator=g)
    j = torch.randint(0, d_in, (nnz,), generator=g)
    val = torch.randn(nnz, generator=g, dtype=torch.float64)
    return row, torch.minimum(i, j), torch.maximum(i, j), val, d_in, d_out


def real_entries(L: int):
    """The model's own entry list (efficient paths, degrees 0..L -> 0..L)."""
    from holovae.nn.cg_entries import cg_square_entries
    from holovae.nn.paths import efficient_paths
    degrees = tuple(range(L + 1))
    e = cg_square_entries(degrees, efficient_paths(degrees, L))
    return e.row, e.i, e.j, e.val, e.n_in, e.n_out


def torch_sparse_pair(row, i, j, val, d_in, d_out, dtype):
    pairs, pair_id = torch.unique(torch.stack([i, j]), dim=1, return_inverse=True)
    pi, pj = pairs[0], pairs[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        S = torch.sparse_coo_tensor(torch.stack([row, pair_id]), val.to(dtype),
                                    (d_out, pairs.shape[1])).coalesce()
        Sc, St = S.to_sparse_csr(), S.t().coalesce().to_sparse_csr()

    def fwd(X):
        return torch.sparse.mm(Sc, X[pi] * X[pj])

    def bwd(dY, X):
        dP = torch.sparse.mm(St, dY)
        dX = torch.zeros_like(X)
        dX.index_add_(0, pi, dP * X[pj])
        dX.index_add_(0, pj, dP * X[pi])
        return dX
    return fwd, bwd


def cases(quick: bool = False):
    out = [("random_D121_E20k", lambda: random_entries(121, 20000, 1500), 1600),
           ("random_D49_E6k", lambda: random_entries(49, 6000, 500), 25600)]
    if not quick:
        out += [("cgL10_efficient", lambda: real_entries(10), 1600),
                ("cgL6_efficient", lambda: real_entries(6), 25600)]
    return out


def run(out_dir, device: str = "cpu", dtype: torch.dtype = torch.float32, quick: bool = False,
        min_time: float = 0.5) -> list[dict]:
    if device != "cpu":
        raise ValueError("the fused kernel is CPU only")
    if not fused_cg.available():
        raise RuntimeError("fused CG kernel unavailable (see the warning above)")
    records = []
    for name, make, N in cases(quick):
        try:
            row, i, j, val, d_in, d_out = make()
        except ImportError as exc:  # the entry-list modules are not there
            print(f"skip {name}: {exc}")
            continue
        X = torch.randn(d_in, N, dtype=dtype)
        dY = torch.randn(d_out, N, dtype=dtype)
        v = val.to(dtype)
        fwd, bwd = torch_sparse_pair(row, i, j, val, d_in, d_out, dtype)
        torch.testing.assert_close(fused_cg.cg_square_forward(X, row, i, j, v, d_out), fwd(X),
                                   rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(fused_cg.cg_square_backward(dY, X, row, i, j, v), bwd(dY, X),
                                   rtol=1e-3, atol=1e-3)
        t = {
            "torch_fwd": 1 / per_second(lambda: fwd(X), 1, min_time),
            "torch_bwd": 1 / per_second(lambda: bwd(dY, X), 1, min_time),
            "fused_fwd": 1 / per_second(lambda: fused_cg.cg_square_forward(X, row, i, j, v, d_out),
                                        1, min_time),
            "fused_bwd": 1 / per_second(lambda: fused_cg.cg_square_backward(dY, X, row, i, j, v),
                                        1, min_time),
        }
        config = {"D_in": d_in, "D_out": d_out, "entries": int(row.numel()), "N": N,
                  "dtype": str(dtype).replace("torch.", ""),
                  **{f"{k}_ms": round(1e3 * s, 3) for k, s in t.items()}}
        base = 1 / (t["torch_fwd"] + t["torch_bwd"])
        fast = 1 / (t["fused_fwd"] + t["fused_bwd"])
        rec = record(f"fused_kernel_{name}_{config['dtype']}", config, base, fast, device, out_dir,
                     unit="fwd+bwd calls/s")
        records.append(rec)
        print(f"{name:18s} {config['dtype']:7s} D_in={d_in:3d} E={row.numel():5d} D_out={d_out:4d} "
              f"N={N:5d} | fwd {1e3 * t['fused_fwd']:8.2f} vs {1e3 * t['torch_fwd']:8.2f} ms "
              f"({t['torch_fwd'] / t['fused_fwd']:5.1f}x) | bwd {1e3 * t['fused_bwd']:8.2f} vs "
              f"{1e3 * t['torch_bwd']:8.2f} ms ({t['torch_bwd'] / t['fused_bwd']:5.1f}x) | "
              f"fwd+bwd {rec['speedup']:5.1f}x", flush=True)
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="only the two random-entry cases")
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__}")
    run(args.out, dtype=getattr(torch, args.dtype), quick=args.quick)
