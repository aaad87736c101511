"""Epoch time of streamed training (``train.data: stream``) against in-memory training, on data
that fits in memory (the files are in the page cache after the first read).

Cases: the paper's protein L = 6 H-VAE (its epoch is compute-bound: the goal is streamed
within 10% of in-memory), and a tiny model on wide rows, whose epoch is almost all data
movement: the worst case for streaming. Both modes run ``holovae.train.train`` with the
same settings (the batch order differs: uniform vs chunk windows; the arithmetic per epoch is
the same), one epoch per run, alternating, ``rounds`` pairs after one unmeasured warm-up pair;
rates are training rows per second of the epoch (validation included, as in ``history.json``'s
``seconds``). On a shared machine the per-pair ratio's median and the ratio of the fastest
epochs are both reported (load spikes last longer than an epoch). The memory mode's one-off read of
the files and the streamed one-off pass (normalising constant, NaN check) are in the config.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from e3nn import o3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import conditions, ratio, record  # noqa: E402

from holovae.data.hdf5 import read_dataset, write_dataset  # noqa: E402
from holovae.data.stream import H5Rows  # noqa: E402
from holovae.models import HVAEConfig  # noqa: E402
from holovae.so3 import irreps_from_channels  # noqa: E402
from holovae.train import TrainConfig, normalizing_constant, train  # noqa: E402

CASES = {  # name -> (architecture, training rows, batch)
    "stream_protein_L6_z64_B512": (dict(irreps_in=str(irreps_from_channels([44, 40, 40, 36, 36, 32, 32])),
                                        latent_dim=64, channels=[50, 50, 50, 64, 64, 64], degrees=[6, 6, 6, 4, 2, 1],
                                        initial_channels=44, vae=True), 2048, 512),
    "stream_tiny_dim1200_B512": (dict(irreps_in="300x0e+200x1e+60x2e", latent_dim=4, channels=[4, 4], degrees=[2, 1],
                                      initial_channels=4, vae=True), 65536, 512),
}


def _epoch_seconds(out: Path) -> list[float]:
    return [r["seconds"] for r in json.loads((out / "history.json").read_text())]


def run(out_dir, device: str = "cpu", rounds: int = 6) -> list[dict]:
    records = []
    for name, (arch, n, batch) in CASES.items():
        model_cfg = HVAEConfig(**arch)
        dim = o3.Irreps(arch["irreps_in"]).dim
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            g = np.random.default_rng(0)
            write_dataset(tmp / "train.h5", g.standard_normal((n, dim), dtype=np.float32) + 0.1, arch["irreps_in"])
            write_dataset(tmp / "val.h5", g.standard_normal((512, dim), dtype=np.float32) + 0.1, arch["irreps_in"])
            seconds = {"memory": [], "stream": []}
            setup = {"memory": [], "stream": []}
            before = conditions()
            for r in range(-1, rounds):    # round -1: warm-up, not recorded
                for mode in (("memory", "stream") if r % 2 == 0 else ("stream", "memory")):
                    cfg = TrainConfig(epochs=1, batch_size=batch, device=device, progress=False, data=mode,
                                      no_kl_epochs=1, warmup_kl_epochs=1)
                    t0 = time.perf_counter()
                    if mode == "memory":
                        tr, va = read_dataset(tmp / "train.h5").coefficients, read_dataset(tmp / "val.h5").coefficients
                    else:
                        tr, va = H5Rows(tmp / "train.h5"), H5Rows(tmp / "val.h5")
                        normalizing_constant(tr, arch["irreps_in"])   # what train() does first, timed apart
                    setup_s = time.perf_counter() - t0
                    out = tmp / f"{mode}{r}"
                    train(model_cfg, tr, va, cfg, out)
                    if r >= 0:
                        setup[mode].append(setup_s)
                        seconds[mode] += _epoch_seconds(out)
            rates = {m: [n / s for s in v] for m, v in seconds.items()}
            med = {m: n / statistics.median(v) for m, v in seconds.items()}
            extra = {"epoch_seconds": {m: [round(s, 3) for s in v] for m, v in seconds.items()},
                     "setup_seconds": {m: [round(s, 3) for s in v] for m, v in setup.items()},
                     "stream_vs_memory": ratio(rates["stream"], rates["memory"]),
                     "stream_vs_memory_fastest": round(min(seconds["memory"]) / min(seconds["stream"]), 3),
                     "conditions": {"before": before, "after": conditions()}}
            records.append(record(name, {**arch, "rows": n, "dim": dim, "batch": batch,
                                         "rounds": rounds, "file_mb": round(n * dim * 4 / 2 ** 20, 1)},
                                  med["memory"], med["stream"], device, out_dir, unit="rows/s (epoch)", extra=extra))
    return records


if __name__ == "__main__":
    for rec in run("benchmarks/out"):
        print(json.dumps(rec, indent=2))
