"""Shared helpers of the benchmarks: timing and the JSON record every benchmark writes."""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch


def per_second(fn: Callable[[], object], items: int, min_time: float = 1.0, warmup: int = 1,
               device: str = "cpu") -> float:
    """Items per second of ``fn`` (called repeatedly for at least ``min_time`` seconds)."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    for _ in range(warmup):
        fn()
    sync()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and calls >= 2:
            return calls * items / elapsed


def interleaved(contenders: dict[str, tuple[Callable[[], object], int]], rounds: int = 5,
                min_time: float = 1.0, device: str = "cpu") -> dict[str, list[float]]:
    """Items per second of every contender ``name -> (fn, items per call)``, timed in turn for
    ``rounds`` rounds (the order rotates every round), so that a load change on a shared machine
    hits all of them alike. Returns ``name -> [rate of each round]``."""
    names = list(contenders)
    rates = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            fn, items = contenders[n]
            rates[n].append(per_second(fn, items, min_time=min_time, warmup=1 if r == 0 else 0, device=device))
    return rates


def ratio(fast: list[float], base: list[float]) -> dict:
    """Median and range of the per-round ratios ``fast / base`` (rounds timed back to back)."""
    r = sorted(f / b for f, b in zip(fast, base))
    return {"median": round(statistics.median(r), 3), "min": round(r[0], 3), "max": round(r[-1], 3)}


def conditions() -> dict:
    """What a timing depends on besides the code: threads, versions, allocator, machine load."""
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "LD_PRELOAD": os.environ.get("LD_PRELOAD", ""), "MALLOC_CONF": os.environ.get("MALLOC_CONF", "")}


def record(name: str, config: dict, baseline_per_s: float, fast_per_s: float, device: str,
           out_dir: str | os.PathLike, unit: str = "samples/s", extra: dict | None = None) -> dict:
    """Write ``<out_dir>/<name>.json`` (atomically) and return the record. ``baseline_per_s``
    is holovae's reference path; ``extra`` adds keys (e.g. the authors' code's rate)."""
    rec = {
        "name": name, "config": config, "unit": unit,
        "baseline_per_s": round(baseline_per_s, 3), "fast_per_s": round(fast_per_s, 3),
        "speedup": round(fast_per_s / baseline_per_s, 2), "device": device,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        **(extra or {}),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(rec, indent=2) + "\n")
    tmp.replace(out / f"{name}.json")
    return rec
