"""A full training step (forward, backward, Adam) of the paper's MNIST and protein models,
with the fast CG product vs the reference one."""
from __future__ import annotations

import torch

from holovae.losses import scaled_mse
from holovae.models import HVAE, HVAEConfig
from holovae.so3 import irreps_from_channels

try:
    from ._common import per_second, record
except ImportError:
    from _common import per_second, record

CASES = {
    "train_step_mnist_z16_B100": (dict(irreps_in=str(irreps_from_channels([1] * 11)), latent_dim=16,
                                       channels=[16] * 6, degrees=[10, 10, 8, 4, 2, 1]), 100, 50.0),
    "train_step_protein_L6_z64_B512": (dict(irreps_in=str(irreps_from_channels([44, 40, 40, 36, 36, 32, 32])),
                                            latent_dim=64, channels=[50, 50, 50, 64, 64, 64],
                                            degrees=[6, 6, 6, 4, 2, 1], initial_channels=44), 512, 1000.0),
}


def _step(model, opt, x, lambda_x):
    def run():
        out = model(x)
        loss = scaled_mse(out["x_rec"], x, lambda_x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


def run(out_dir, device: str = "cpu", min_time: float = 3.0) -> list[dict]:
    records = []
    for name, (cfg, batch, lambda_x) in CASES.items():
        timings = {}
        for impl in ("reference", "auto"):
            torch.manual_seed(0)
            model = HVAE(HVAEConfig(**cfg, tp_implementation=impl)).to(device).train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            dim = sum(c * (2 * l + 1) for l, c in model.data_channels.items())
            x = torch.randn(batch, dim, device=device)
            timings[impl] = per_second(_step(model, opt, x, lambda_x), batch, min_time=min_time, device=device)
        records.append(record(name, {**cfg, "batch": batch, "params": model.n_parameters()},
                              timings["reference"], timings["auto"], device, out_dir))
    return records


if __name__ == "__main__":
    import json
    for r in run("benchmarks/out"):
        print(json.dumps(r))
