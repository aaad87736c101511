"""CG tensor-square layer, forward + backward: fast path vs the authors' per-path einsums."""
from __future__ import annotations

import torch

from holovae.nn.tensor_product import ChannelwiseTensorProduct

try:
    from ._common import per_second, record
except ImportError:  # run as a script
    from _common import per_second, record

CASES = [  # (L, C, batch): the MNIST and protein layers of the paper
    (10, 16, 100),
    (6, 50, 512),
]


def _step(tp, x, g):
    def run():
        for v in x.values():
            v.grad = None
        y = tp(x)
        sum((y[l] * g[l]).sum() for l in y).backward()
    return run


def run(out_dir, device: str = "cpu") -> list[dict]:
    records = []
    for L, C, B in CASES:
        x = {l: torch.randn(2 * l + 1, B, C, device=device, requires_grad=True) for l in range(L + 1)}
        timings = {}
        for impl in ("reference", "auto"):
            tp = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L, implementation=impl)
            y = tp(x)
            g = {l: torch.randn_like(v) for l, v in y.items()}
            timings[impl] = per_second(_step(tp, x, g), B, device=device)
        fast_name = tp._op(torch.device(device), torch.float32).__class__.__name__.strip("_")
        records.append(record(f"cg_layer_L{L}_C{C}_B{B}", {"L": L, "C": C, "batch": B, "fast": fast_name},
                              timings["reference"], timings["auto"], device, out_dir))
    return records


if __name__ == "__main__":
    import json
    for r in run("benchmarks/out"):
        print(json.dumps(r))
