"""Shared helpers of the benchmarks: timing and the JSON record every benchmark writes."""
from __future__ import annotations

import json
import os
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


def record(name: str, config: dict, baseline_per_s: float, fast_per_s: float, device: str,
           out_dir: str | os.PathLike, unit: str = "samples/s") -> dict:
    """Write ``<out_dir>/<name>.json`` (atomically) and return the record."""
    rec = {
        "name": name, "config": config, "unit": unit,
        "baseline_per_s": round(baseline_per_s, 3), "fast_per_s": round(fast_per_s, 3),
        "speedup": round(fast_per_s / baseline_per_s, 2), "device": device,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(rec, indent=2) + "\n")
    tmp.replace(out / f"{name}.json")
    return rec
