"""Run every benchmark, print one table of baseline vs holovae throughput, write JSON records.

    python benchmarks/run.py [--only cg,zft] [--device cuda] [--out benchmarks/out]

Each benchmark measures its baseline (the authors' algorithm, re-implemented here as the
reference path) and our fast path in the same process, so the ratio is meaningful on any
machine; absolute numbers are not comparable across machines.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCHMARKS = {  # name -> module; each has run(out_dir, device=...) -> list of records
    "zft": "bench_zft",
    "wigner": "bench_wigner",
    "fused_kernel": "bench_fused_kernel",
    "cg": "bench_cg",
    "train_step": "bench_train_step",
    "neighbourhoods": "bench_neighbourhoods",
    "raycast": "bench_raycast",
    "hdf5_codec": "bench_hdf5_codec",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/out")
    args = ap.parse_args(argv)
    wanted = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")

    rows = []
    for name in wanted:
        print(f"== {name}", flush=True)
        rows += importlib.import_module(BENCHMARKS[name]).run(args.out, device=args.device)

    width = max(len(r["name"]) for r in rows)
    print(f"\n{'benchmark':{width}s} {'unit':>18s} {'baseline':>11s} {'holovae':>11s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['name']:{width}s} {r['unit']:>18s} {r['baseline_per_s']:11.1f} {r['fast_per_s']:11.1f} "
              f"{r['speedup']:6.1f}x")
    print(f"\nrecords in {args.out}/ (device {args.device}, threads {rows[0]['threads']}, torch {rows[0]['torch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
