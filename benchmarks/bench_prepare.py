"""Structures -> HDF5 end to end: the whole ``holovae prepare-structures`` command (L = 6,
n_max = 20, the authors' radial formula and 'square' normalisation, one torch thread), with
the secondary structure from backbone geometry (``geometry``, the embedded default's) and from
DSSP (``dssp``: the paper config's ``auto`` with DSSP on PATH; skipped without it), in neighbourhoods per core-second: rows of the written file over
the CPU time (user + system) of the command's process, interpreter start-up, parsing,
neighbourhoods, secondary structure, Zernike transform and the HDF5 write included.

Inputs: the structures shipped with holovae, and ``../shared/data/pdb/posebusters_raw_mmcif``
where present (261 mmCIF files). The record's ``baseline_per_s`` is the goal of issue #17,
5,000 neighbourhoods per core-second, not a measurement: its "ratio" is the fraction of the
goal reached. The command's own stage timings (wall seconds, from its log) are in the config.
"""
from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import conditions, record  # noqa: E402

GOAL = 5000.0
POSEBUSTERS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pdb" / "posebusters_raw_mmcif"
ARGS = ["--lmax", "6", "--n-max", "20", "--radial", "authors", "--normalization", "square", "--threads", "1",
        "--no-progress"]
_LOG = re.compile(r"in ([\d.]+) s: .* \(parsing ([\d.]+) s, transform ([\d.]+) s\)")


def _inputs() -> dict[str, list[Path]]:
    from holovae.data.embedded import embedded_structure_paths
    sets = {"embedded": embedded_structure_paths()}
    if POSEBUSTERS.is_dir():
        sets["posebusters"] = sorted(POSEBUSTERS.glob("*.cif.gz"))
    return sets


def _command(files, out: Path, secondary: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep +
               os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "holovae.cli", "prepare-structures", *map(str, files), "--out", str(out),
                        *ARGS, "--secondary", secondary], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise RuntimeError(f"prepare-structures failed:\n{p.stderr[-3000:]}")
    with h5py.File(out, "r") as f:
        rows = f["coefficients"].shape[0]
    m = _LOG.search(p.stderr)
    return {"rows": rows, "wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "file_mb": round(out.stat().st_size / 2 ** 20, 1),
            "log_featurize_s": float(m.group(1)) if m else None, "log_parse_s": float(m.group(2)) if m else None,
            "log_transform_s": float(m.group(3)) if m else None}


def run(out_dir, device: str = "cpu") -> list[dict]:
    from holovae.data.secondary import find_dssp
    records = []
    modes = ["geometry"] + (["dssp"] if find_dssp() else [])
    for (name, files), secondary in ((s, m) for s in _inputs().items() for m in modes):
        before = conditions()
        with tempfile.TemporaryDirectory() as tmp:
            r = _command(files, Path(tmp) / "out.h5", secondary)
        per_core_s = r["rows"] / r["cpu_s"]
        cfg = {"inputs": name, "files": len(files), "secondary": secondary,
               "command": "holovae prepare-structures " + " ".join(ARGS) + " --secondary " + secondary,
               "baseline": "the goal of issue #17 (not a measurement)", **{k: round(v, 2) if isinstance(v, float) else v
                                                                            for k, v in r.items()},
               "per_wall_s": round(r["rows"] / r["wall_s"], 1)}
        records.append(record(f"prepare_structures_L6_{name}_{secondary}", cfg, GOAL, per_core_s, "cpu", out_dir,
                              unit="neighbourhoods/core-s", extra={"conditions": {"before": before, "after": conditions()}}))
    return records


if __name__ == "__main__":
    for rec in run("benchmarks/out"):
        print(json.dumps(rec, indent=2))
