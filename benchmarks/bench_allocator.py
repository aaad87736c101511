"""Training-step throughput under glibc malloc, jemalloc with its default decay, and jemalloc
with ``MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1`` (freed pages kept, never returned).

Each measurement is a fresh process (the allocator is chosen at process start, by
``LD_PRELOAD``) timing holovae's training step of ``bench_train_step`` (MNIST z16 batch 100,
protein L6 z64 batch 512) for ``seconds`` after one warm-up step; the three allocators are run
in turn, the order rotating every round, ``rounds`` times. Records: baseline = glibc, fast =
jemalloc without decay; the default-decay rates and every round's numbers are in the record.
jemalloc: Debian's ``libjemalloc2`` (``/usr/lib/x86_64-linux-gnu/libjemalloc.so.2``), or
``--jemalloc PATH``; without it the benchmark says so and records nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import conditions, ratio, record  # noqa: E402

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
NO_DECAY = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
ALLOCATORS = {"glibc": {}, "jemalloc": {"LD_PRELOAD": JEMALLOC},
              "jemalloc_no_decay": {"LD_PRELOAD": JEMALLOC, "MALLOC_CONF": NO_DECAY}}
SECONDS = {"mnist_z16_B100": 8.0, "protein_L6_z64_B512": 12.0}


def _child(case: str, seconds: float, threads: int) -> None:
    import torch

    from bench_train_step import CASES, _holovae_step
    from holovae.models import HVAE, HVAEConfig

    from _common import per_second
    torch.set_num_threads(threads)
    cfg, batch, lambda_x, _ = CASES[case]
    torch.manual_seed(0)
    model = HVAE(HVAEConfig(**cfg)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, sum(c * (2 * l + 1) for l, c in model.data_channels.items()))
    print(json.dumps({"per_s": per_second(_holovae_step(model, opt, x, lambda_x), batch, min_time=seconds)}))


def _measure(case: str, allocator: str, threads: int, jemalloc: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    env.update({k: (jemalloc if k == "LD_PRELOAD" else v) for k, v in ALLOCATORS[allocator].items()})
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", case, "--threads", str(threads)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["per_s"]


def run(out_dir, device: str = "cpu", rounds: int = 4, threads: int | None = None,
        jemalloc: str = JEMALLOC) -> list[dict]:
    import torch
    if device != "cpu":
        print("bench_allocator: CPU only (the allocator of host memory); skipped")
        return []
    if not Path(jemalloc).exists():
        print(f"bench_allocator: {jemalloc} not found (Debian: apt-get install libjemalloc2); skipped")
        return []
    threads = threads or torch.get_num_threads()
    records = []
    for case in SECONDS:
        rates = {a: [] for a in ALLOCATORS}
        before = conditions()
        names = list(ALLOCATORS)
        for r in range(rounds):
            for a in names[r % 3:] + names[:r % 3]:
                rates[a].append(_measure(case, a, threads, jemalloc))
        med = {a: statistics.median(v) for a, v in rates.items()}
        extra = {"rates": {a: [round(x, 2) for x in v] for a, v in rates.items()},
                 "jemalloc_default_per_s": round(med["jemalloc"], 3),
                 "jemalloc_default_vs_glibc": ratio(rates["jemalloc"], rates["glibc"]),
                 "jemalloc_no_decay_vs_glibc": ratio(rates["jemalloc_no_decay"], rates["glibc"]),
                 "jemalloc": jemalloc, "no_decay_conf": NO_DECAY,
                 "conditions": {"before": before, "after": conditions(), "threads": threads}}
        records.append(record(f"allocator_train_step_{case}", {"case": case, "rounds": rounds, "threads": threads,
                                                               "seconds": SECONDS[case]},
                              med["glibc"], med["jemalloc_no_decay"], device, out_dir, extra=extra))
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--jemalloc", default=JEMALLOC)
    ap.add_argument("--out-dir", default="benchmarks/out")
    args = ap.parse_args()
    if args.child:
        _child(args.child, SECONDS[args.child], args.threads or 1)
    else:
        for rec in run(args.out_dir, rounds=args.rounds, threads=args.threads, jemalloc=args.jemalloc):
            print(json.dumps(rec, indent=2))
