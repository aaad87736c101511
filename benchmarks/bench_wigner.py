"""Wigner-D of a batch of rotations (L = 10): e3nn's D_from_matrix vs holovae's sampled harmonics.

Used wherever data or reconstructions are rotated: the R datasets, the MLP decoder of Table S1,
equivariance evaluation.
"""
from __future__ import annotations

from e3nn import o3

from holovae.so3 import irreps_D, random_rotation

try:
    from ._common import per_second, record
except ImportError:  # run as a script
    from _common import per_second, record

IRREPS = "+".join(f"1x{l}e" for l in range(11))


def run(out_dir, device: str = "cpu", batch: int = 100) -> list[dict]:
    R = random_rotation(batch).float()
    # e3nn 0.6's D_from_matrix builds its generators on the CPU and fails on CUDA tensors,
    # so on a GPU the baseline is what a user of e3nn gets: the CPU computation.
    base = per_second(lambda: o3.Irreps(IRREPS).D_from_matrix(R), batch)
    R_dev = R.to(device)
    fast = per_second(lambda: irreps_D(IRREPS, R_dev), batch, device=device)
    return [record("wigner_D_L10", {"irreps": IRREPS, "batch": batch, "dtype": "float32",
                                    "baseline_device": "cpu"}, base, fast, device, out_dir, unit="rotations/s")]


if __name__ == "__main__":
    import json
    for r in run("benchmarks/out"):
        print(json.dumps(r))
