"""A full training step (forward, backward, Adam) of the paper's MNIST and protein H-VAEs, and
the encoder alone (evaluation mode, no gradient: what ``holovae embed`` runs).

Contenders, timed interleaved (``_common.interleaved``): holovae's fast CG product
(``tp_implementation="auto"``), holovae's reference path (the authors' algorithm, dense CG
blocks per path, re-implemented), and with ``authors`` (``run.py --authors PATH``) the authors'
own ``H_VAE`` of the same architecture (parameter counts asserted equal). Every side gets its
input in its own layout, prepared outside the timed step (the authors' ``{l: [B, C, 2l+1]}``
dict comes from their data loader), and the same loss: ``lambda_x * MSE + lambda_kl * KL``.
"""
from __future__ import annotations

import torch

from holovae.losses import kl_divergence, scaled_mse
from holovae.models import HVAE, HVAEConfig
from holovae.train import adam
from holovae.so3 import irreps_from_channels

try:
    from ._common import conditions, interleaved, ratio, record
except ImportError:
    from _common import conditions, interleaved, ratio, record

LAMBDA_KL = 0.2
CASES = {  # name -> (architecture, batch, lambda_x, parameters of the H-VAE)
    "mnist_z16_B100": (dict(irreps_in=str(irreps_from_channels([1] * 11)), latent_dim=16, channels=[16] * 6,
                            degrees=[10, 10, 8, 4, 2, 1], vae=True), 100, 50.0, 226_691),
    "protein_L6_z64_B512": (dict(irreps_in=str(irreps_from_channels([44, 40, 40, 36, 36, 32, 32])), latent_dim=64,
                                 channels=[50, 50, 50, 64, 64, 64], degrees=[6, 6, 6, 4, 2, 1], initial_channels=44,
                                 vae=True), 512, 1000.0, 1_594_095),
}


def _holovae_step(model, opt, x, lambda_x):
    def run():
        out = model(x)
        loss = scaled_mse(out["x_rec"], x, lambda_x) + LAMBDA_KL * kl_divergence(out["z_mean"], out["z_log_var"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return run


def _authors_step(model, opt, xd, x, lambda_x):
    def run():   # their training loop's step (hvae_training.py): zero_grad, forward, weighted sum, step
        opt.zero_grad()
        rec, kl, _, _ = model(xd, x_vec=x)
        (lambda_x * rec + LAMBDA_KL * kl).backward()
        opt.step()
    return run


def _holovae_encode(model, x):
    def run():
        with torch.no_grad():
            model.encode(x)
    return run


def _authors_encode(model, xd):
    def run():
        with torch.no_grad():
            model.encode(xd)
    return run


def _models(cfg, params, device, authors):
    torch.manual_seed(0)
    models = {impl: HVAE(HVAEConfig(**cfg, tp_implementation=impl)).to(device) for impl in ("reference", "auto")}
    if authors is not None:
        models["authors"] = authors.h_vae(cfg, device)
    for name, m in models.items():
        n = sum(p.numel() for p in m.parameters())
        if n != params:
            raise AssertionError(f"{name} model has {n:,} parameters, expected {params:,} (same architecture?)")
    return models


def run(out_dir, device: str = "cpu", authors=None, rounds: int = 5, min_time: float = 2.0) -> list[dict]:
    records = []
    for case, (cfg, batch, lambda_x, params) in CASES.items():
        models = _models(cfg, params, device, authors)
        g = torch.Generator().manual_seed(1)
        dim = sum(c * (2 * l + 1) for l, c in models["auto"].data_channels.items())
        x = torch.randn(batch, dim, generator=g).to(device)
        xd = authors.as_dict(x, cfg["irreps_in"]) if authors is not None else None
        for what in ("train_step", "encode"):
            contenders = {}
            for name, m in models.items():
                if what == "train_step":
                    m.train()
                    # each side's own optimizer: the authors' training script uses torch's
                    # default Adam, holovae's trainer its fused form (holovae.train.adam)
                    opt = torch.optim.Adam(m.parameters(), lr=1e-3) if name == "authors" else adam(m.parameters(), lr=1e-3)
                    fn = _authors_step(m, opt, xd, x, lambda_x) if name == "authors" else _holovae_step(m, opt, x, lambda_x)
                else:
                    m.eval()
                    fn = _authors_encode(m, xd) if name == "authors" else _holovae_encode(m, x)
                contenders[name] = (fn, batch)
            before = conditions()
            rates = interleaved(contenders, rounds=rounds, min_time=min_time, device=device)
            med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
            extra = {"rounds": rounds, "rates": {k: [round(r, 2) for r in v] for k, v in rates.items()},
                     "speedup_range": ratio(rates["auto"], rates["reference"]),
                     "conditions": {"before": before, "after": conditions()}}
            if authors is not None:
                extra.update(authors_per_s=round(med["authors"], 3),
                             speedup_vs_authors=ratio(rates["auto"], rates["authors"])["median"],
                             speedup_vs_authors_range=ratio(rates["auto"], rates["authors"]),
                             reference_vs_authors=ratio(rates["reference"], rates["authors"]),
                             authors_code=authors.describe())
            records.append(record(f"{what}_{case}", {**cfg, "batch": batch, "params": params, "lambda_x": lambda_x,
                                                     "lambda_kl": LAMBDA_KL},
                                  med["reference"], med["auto"], device, out_dir, extra=extra))
    return records


if __name__ == "__main__":
    import json
    for r in run("benchmarks/out"):
        print(json.dumps(r))
