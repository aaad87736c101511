"""Structures -> 10 Å neighbourhoods -> ZFT (L = 6, n_max = 20), end to end, one core.

Real files: the first ``n_files`` of ``../shared/data/pdb/posebusters_raw_mmcif``, or where that is
absent the ten structures shipped with holovae. Parsing is our :func:`parse_structure`, timed once per backend (``gemmi``
and ``biopython``: the same records, checked here); one record per backend.

* baseline (mimics the authors' pipeline, written here): per residue a Python loop that selects
  its atoms within r_max by a distance computation, then one ZFT per neighbourhood with scipy
  special functions (``bench_zft.baseline_one``: hyp2f1 / sph_harm_y per (n, l) and (l, m)).
  Timed on ``baseline_neighbourhoods`` neighbourhoods and scaled.
  Its parsing is biopython's (as the authors' was), so both records share one baseline.
* ours: :func:`parse_structure` with the record's backend + :func:`neighbourhoods` (one
  vectorised KD-tree query per structure) + geometric secondary structure +
  :func:`zernike_transform` batched over all structures.

Rates are neighbourhoods/s with ``torch.set_num_threads(1)`` (per core). Records
``neighbourhoods_L6_gemmi`` and ``neighbourhoods_L6_biopython``; parse times are best of
``parse_repeats`` (the machine may be shared).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402
from bench_zft import baseline_one  # noqa: E402

from holovae.data.neighbourhoods import atom_channels, centre_residues, neighbourhoods  # noqa: E402
from holovae.data.secondary import geometric_secondary  # noqa: E402
from holovae.data.structures import parse_structure  # noqa: E402
from holovae.transforms import zernike_transform  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pdb" / "posebusters_raw_mmcif"
CONFIG = dict(n_files=20, r_max=10.0, lmax=6, n_max=20, elements=["C", "N", "O", "S"], radial="authors",
              normalization="square", baseline_neighbourhoods=60, parse_repeats=2)
BACKENDS = ("gemmi", "biopython")


def _baseline_structure(s, cfg, limit):
    """The authors' shape of loop: per residue, distances to every atom, then a per-neighbourhood
    ZFT. Returns the number of neighbourhoods done (at most ``limit``)."""
    channels, nc = atom_channels(s.element, cfg["elements"])
    residues, _ = centre_residues(s)
    done = 0
    for r in residues.tolist():
        if done >= limit:
            break
        ca = s.ca_index[r]
        d = np.linalg.norm(s.coords - s.coords[ca], axis=1)
        sel = np.flatnonzero((d <= cfg["r_max"]) & (channels >= 0))
        sel = sel[sel != ca]
        baseline_one((s.coords[sel] - s.coords[ca]).astype(np.float64), channels[sel], nc,
                     cfg["lmax"], cfg["n_max"], cfg["r_max"])
        done += 1
    return done


def _parse_s(files, backend: str, repeats: int):
    """Best-of-``repeats`` seconds to parse ``files`` with ``backend``, and the structures."""
    parse_structure(files[0], backend=backend)          # imports, parser set-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        structures = [parse_structure(f, backend=backend) for f in files]
        best = min(best, time.perf_counter() - t0)
    return best, structures


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in
               ("coords", "element", "atom_name", "residue_index", "chain", "resnum", "icode", "resname",
                "is_hetero", "ca_index"))


def run(out_dir, device: str = "cpu") -> list[dict]:
    """Time both pipelines on real structures; write ``<out_dir>/neighbourhoods_L6_<backend>.json``."""
    cfg = CONFIG
    if DATA.is_dir():
        files = sorted(DATA.glob("*.cif.gz"))[: cfg["n_files"]]
    else:   # a user's machine: the ten structures shipped with holovae
        from holovae.data.embedded import embedded_structure_paths

        files = embedded_structure_paths()
        print(f"bench_neighbourhoods: {DATA} not found; timing the {len(files)} structures shipped with holovae")
    cfg = dict(cfg, n_files=len(files))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        parse_s, structures = {}, None
        backends = [b for b in BACKENDS if b != "gemmi" or importlib.util.find_spec("gemmi")]
        for backend in backends:
            parse_s[backend], got = _parse_s(files, backend, cfg["parse_repeats"])
            if structures is None:
                structures = got
            elif not all(_same(a, b) for a, b in zip(structures, got)):
                raise RuntimeError(f"bench_neighbourhoods: backend {backend} parses differently")

        t0 = time.perf_counter()
        clouds = [neighbourhoods(s, r_max=cfg["r_max"], elements=cfg["elements"]) for s in structures]
        for s in structures:
            geometric_secondary(s)
        nb_s = time.perf_counter() - t0
        n = sum(len(c) for c in clouds)
        pts = torch.from_numpy(np.concatenate([c.points for c in clouds]))
        ch = torch.from_numpy(np.concatenate([c.channels for c in clouds]))
        sizes = np.concatenate([np.diff(c.offsets) for c in clouds])
        off = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)]))
        kw = dict(n_channels=len(cfg["elements"]), lmax=cfg["lmax"], n_max=cfg["n_max"], r_max=cfg["r_max"],
                  radial=cfg["radial"], normalization=cfg["normalization"])
        zernike_transform(pts[: off[64]], ch[: off[64]], off[:65], **kw)   # warm the workspace
        t0 = time.perf_counter()
        for b0 in range(0, n, 4096):                     # the CLI's chunking
            b1 = min(n, b0 + 4096)
            zernike_transform(pts[off[b0]: off[b1]], ch[off[b0]: off[b1]], off[b0: b1 + 1] - off[b0], **kw)
        zft_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        nb_base, left = 0, cfg["baseline_neighbourhoods"]
        for s in structures[:2]:
            k = _baseline_structure(s, cfg, left // 2 if s is structures[0] else left)
            nb_base, left = nb_base + k, left - k
        base_loop_s = (time.perf_counter() - t0) / nb_base
        return [_record(out_dir, cfg, files, n, len(ch), backend, parse_s, nb_s, zft_s, base_loop_s)
                for backend in backends]
    finally:
        torch.set_num_threads(threads)


def _record(out_dir, cfg, files, n, n_points, backend, parse_s, nb_s, zft_s, base_loop_s):
    ours_s = parse_s[backend] + nb_s + zft_s
    baseline_per_s = 1.0 / (parse_s["biopython"] / n + base_loop_s)
    fast_per_s = n / ours_s
    config = dict(cfg, backend=backend, files=[f.name for f in files], neighbourhoods=n,
                  atoms_per_neighbourhood=round(n_points / n, 1), threads=1, parse_s=round(parse_s[backend], 3),
                  baseline_parse_s=round(parse_s["biopython"], 3), neighbourhoods_and_secondary_s=round(nb_s, 3),
                  zft_s=round(zft_s, 3), parse_per_s=round(n / parse_s[backend], 1),
                  parse_fraction=round(parse_s[backend] / ours_s, 3), zft_per_s=round(n / zft_s, 1),
                  without_parse_per_s=round(n / (nb_s + zft_s), 1), baseline_zft_loop_per_s=round(1.0 / base_loop_s, 1))
    return record(name=f"neighbourhoods_L6_{backend}", config=config, baseline_per_s=baseline_per_s,
                  fast_per_s=fast_per_s, device="cpu", out_dir=out_dir, unit="neighbourhoods/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="benchmarks/out")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    for rec in run(args.out_dir, args.device):
        print(json.dumps(rec, indent=2))
