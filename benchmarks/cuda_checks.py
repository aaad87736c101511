"""Checks and timings that need a CUDA GPU (run by hand on a GPU machine; CI has none).

    python benchmarks/cuda_checks.py [--out benchmarks/out]

1. The CG tensor product's CUDA path (torch sparse) equals the float64 CPU reference
   (values and gradients).
2. The whole model on CUDA is equivariant (float32 and bf16 autocast).
3. Training-step throughput on the GPU: reference (the authors' algorithm) vs holovae, float32
   and bf16 autocast, for the paper's MNIST and protein models.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import per_second, record  # noqa: E402

from holovae.losses import scaled_mse  # noqa: E402
from holovae.models import HVAE, HVAEConfig  # noqa: E402
from holovae.nn.tensor_product import ChannelwiseTensorProduct  # noqa: E402
from holovae.so3 import irreps_from_channels, random_rotation, rotate_flat  # noqa: E402

MNIST = dict(irreps_in=str(irreps_from_channels([1] * 11)), latent_dim=16, channels=[16] * 6,
             degrees=[10, 10, 8, 4, 2, 1])
PROTEIN = dict(irreps_in=str(irreps_from_channels([44, 40, 40, 36, 36, 32, 32])), latent_dim=64,
               channels=[50, 50, 50, 64, 64, 64], degrees=[6, 6, 6, 4, 2, 1], initial_channels=44)


def check_tensor_product() -> dict:
    out = {}
    for L, C, B in ((10, 16, 64), (6, 50, 128)):
        x64 = {l: torch.randn(2 * l + 1, B, C, dtype=torch.float64, requires_grad=True) for l in range(L + 1)}
        ref = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L, implementation="reference")
        y_ref = ref(x64)
        g = {l: torch.randn_like(v) for l, v in y_ref.items()}
        sum((y_ref[l] * g[l]).sum() for l in y_ref).backward()
        xc = {l: v.detach().float().cuda().requires_grad_() for l, v in x64.items()}
        fast = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L, implementation="auto")
        y = fast(xc)
        sum((y[l] * g[l].float().cuda()).sum() for l in y).backward()
        val = max(((y[l].double().cpu() - y_ref[l]).abs().max() / y_ref[l].abs().max()).item() for l in y)
        grad = max(((xc[l].grad.double().cpu() - x64[l].grad).abs().max() / x64[l].grad.abs().max()).item()
                   for l in x64)
        out[f"L{L}_C{C}"] = {"impl": type(fast._op(torch.device("cuda"), torch.float32)).__name__,
                             "max_rel_value_error": val, "max_rel_grad_error": grad}
        assert val < 1e-5 and grad < 1e-5, out
    return out


@torch.no_grad()
def check_equivariance() -> dict:
    out = {}
    for name, cfg in (("mnist", MNIST), ("protein", PROTEIN)):
        torch.manual_seed(0)
        model = HVAE(HVAEConfig(**cfg)).cuda().eval()
        x = torch.randn(64, model_dim(model), device="cuda")
        R = random_rotation(64).cuda()
        for amp in (False, True):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                a = model(x)["x_rec"].float()
                b = model(rotate_flat(x.double(), cfg["irreps_in"], R).float())["x_rec"].float()
            a_rot = rotate_flat(a.double(), cfg["irreps_in"], R)
            rel = ((a_rot - b.double()).norm(dim=1) / a_rot.norm(dim=1)).max().item()
            out[f"{name}_{'bf16' if amp else 'fp32'}"] = rel
    assert out["mnist_fp32"] < 1e-4 and out["protein_fp32"] < 1e-4, out
    return out


def model_dim(model) -> int:
    return sum(c * (2 * l + 1) for l, c in model.data_channels.items())


def time_training(out_dir) -> list[dict]:
    records = []
    for name, cfg, batch, lambda_x in (("mnist_z16_B100", MNIST, 100, 50.0), ("protein_L6_z64_B512", PROTEIN, 512, 1000.0)):
        for amp in (False, True):
            rates = {}
            for impl in ("reference", "auto"):
                torch.manual_seed(0)
                model = HVAE(HVAEConfig(**cfg, tp_implementation=impl)).cuda().train()
                opt = torch.optim.Adam(model.parameters(), lr=1e-3)
                x = torch.randn(batch, model_dim(model), device="cuda")

                def step():
                    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                        loss = scaled_mse(model(x)["x_rec"].float(), x, lambda_x)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                rates[impl] = per_second(step, batch, min_time=3.0, warmup=3, device="cuda")
            records.append(record(f"cuda_train_step_{name}_{'bf16' if amp else 'fp32'}",
                                  {**cfg, "batch": batch, "amp": amp, "gpu": torch.cuda.get_device_name()},
                                  rates["reference"], rates["auto"], "cuda", out_dir))
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    t0 = time.time()
    result = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
              "tensor_product": check_tensor_product(), "equivariance_rel_error": check_equivariance()}
    print(json.dumps(result, indent=1), flush=True)
    for r in time_training(args.out):
        print(f"{r['name']:45s} reference {r['baseline_per_s']:10.0f}/s  holovae {r['fast_per_s']:10.0f}/s  "
              f"{r['speedup']:5.1f}x", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "cuda_checks.json").write_text(json.dumps(result, indent=1))
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
