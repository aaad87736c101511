"""Run every benchmark, print one table of baseline vs holovae throughput, write JSON records.

    python benchmarks/run.py [--only cg,zft] [--device cuda] [--out benchmarks/out] [--authors PATH]

Each benchmark measures its baseline (the authors' algorithm, re-implemented here as the
reference path) and our fast path in the same process, so the ratio is meaningful on any
machine; absolute numbers are not comparable across machines.

``--authors PATH`` (a checkout of gvisani/Holographic-VAE that you fetched; never copied here)
adds the authors' own code as a second baseline where a benchmark has one (``train_step``: their
``H_VAE`` training step and encoder; ``zft``: their Zernike transform), timed interleaved with
holovae's; their files (a CG cache) go to ``--authors-scratch``. See ``authors.py``.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
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
    "prepare": "bench_prepare",
    "raycast": "bench_raycast",
    "hdf5_codec": "bench_hdf5_codec",
    "stream": "bench_stream",
    "allocator": "bench_allocator",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/out")
    ap.add_argument("--authors", default=None, metavar="PATH",
                    help="a checkout of gvisani/Holographic-VAE: time the authors' own code as a second baseline")
    ap.add_argument("--authors-scratch", default="benchmarks/out/authors_scratch",
                    help="working directory of the authors' code (it writes a CG cache there)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for every benchmark (default: torch's choice); on a loaded machine 1 "
                         "gives steadier numbers: OpenMP threads that wait for a descheduled sibling spin")
    args = ap.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    wanted = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")

    authors = None
    if args.authors:
        from authors import AuthorsCode
        authors = AuthorsCode(args.authors, args.authors_scratch)
    load_before = os.getloadavg()
    rows = []
    for name in wanted:
        print(f"== {name}", flush=True)
        module = importlib.import_module(BENCHMARKS[name])
        kw = {"authors": authors} if authors is not None and "authors" in inspect.signature(module.run).parameters else {}
        rows += module.run(args.out, device=args.device, **kw)

    width = max(len(r["name"]) for r in rows)
    print(f"\n{'benchmark':{width}s} {'unit':>18s} {'authors':>10s} {'reference':>10s} {'holovae':>10s} "
          f"{'vs authors':>10s} {'vs ref.':>8s}")
    for r in rows:
        a, va = r.get("authors_per_s"), r.get("speedup_vs_authors")
        a, va = (f"{a:.1f}", f"{va:.2f}x") if a is not None else ("-", "-")
        print(f"{r['name']:{width}s} {r['unit']:>18s} {a:>10s} {r['baseline_per_s']:10.1f} "
              f"{r['fast_per_s']:10.1f} {va:>10s} {r['speedup']:7.2f}x")
    load_after = os.getloadavg()
    print(f"\nreference = holovae's re-implementation of the authors' algorithm; authors = their own code"
          f"{' (' + authors.describe() + ')' if authors else ' (not timed: --authors PATH)'}")
    print(f"records in {args.out}/ (device {args.device}, threads {rows[0]['threads']}, torch {rows[0]['torch']}, "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after, "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or '-'}, MALLOC_CONF={os.environ.get('MALLOC_CONF', '') or '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
