"""Zernike Fourier transform of protein-like neighbourhoods: ours vs the authors' algorithm.

Synthetic neighbourhoods: 500 atoms uniform in a 10 A ball, channels C/N/O/S in protein-like
proportions; L = 6, n_max = 20, the authors' radial formula and "square" normalisation.

Baseline (mimics the authors' code path, written here): one neighbourhood at a time in numpy;
per unique (n, l) ``scipy.special.hyp2f1`` on all atoms, per unique (l, m) complex
``scipy.special.sph_harm_y``, an einsum over (channel, nlm, atom), then complex -> real SH per
degree. Ours: :func:`holovae.transforms.zernike_transform` on a ragged batch.
The two agree on every per-(channel, n, l) norm (basis-independent), checked before timing.

With ``authors`` (``run.py --authors PATH``) the authors' own transform is timed too, on the
first ``authors_neighbourhoods`` of the same neighbourhoods: ``get_hologram`` of their
``preprocessing_faster`` pipeline (see ``authors.py`` for why that one and what glue it needs),
its per-(channel, n, l) norms checked proportional to ours (one global factor: their
normalisation of the spherical harmonics) before timing; the three are timed interleaved.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import binom, hyp2f1, sph_harm_y

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import conditions, interleaved, per_second, ratio, record  # noqa: E402

from holovae.transforms import n_radial, zernike_transform  # noqa: E402

CONFIG = dict(atoms=500, r_max=10.0, n_channels=4, lmax=6, n_max=20, radial="authors",
              normalization="square", baseline_neighbourhoods=5, fast_neighbourhoods=1000, authors_neighbourhoods=20)
ELEMENTS = ["C", "N", "O", "S"]


def synthetic_neighbourhoods(n: int, atoms: int, r_max: float, seed: int = 0):
    """``points [n*atoms, 3]`` uniform in the ball, ``channels [n*atoms]``, ``offsets [n+1]``."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n * atoms, 3, generator=g)
    d = d / d.norm(dim=1, keepdim=True)
    pts = d * (r_max * torch.rand(n * atoms, 1, generator=g) ** (1 / 3))
    ch = torch.multinomial(torch.tensor([0.62, 0.17, 0.19, 0.02]), n * atoms, replacement=True, generator=g)
    return pts, ch, torch.arange(0, n * atoms + 1, atoms)


def _nlm(lmax: int, n_max: int):
    n, l, m = [], [], []
    for ll in range(lmax + 1):
        for nn in range(ll, n_max + 1, 2):
            for mm in range(-ll, ll + 1):
                n.append(nn), l.append(ll), m.append(mm)
    return np.array(n), np.array(l), np.array(m)


def baseline_one(xyz: np.ndarray, channels: np.ndarray, n_channels: int, lmax: int, n_max: int,
                 r_max: float) -> dict:
    """The authors' algorithm for one neighbourhood -> ``{l: [n_channels * n_r(l), 2l+1]}`` real."""
    r = np.linalg.norm(xyz, axis=1)
    keep = r <= r_max
    xyz, r, channels = xyz[keep], r[keep], channels[keep]
    theta = np.arccos(np.clip(xyz[:, 2] / np.where(r > 0, r, 1), -1, 1))
    phi = np.arctan2(xyz[:, 1], xyz[:, 0])
    weights = np.stack([(channels == c).astype(float) for c in range(n_channels)])   # [c, N]
    n, l, m = _nlm(lmax, n_max)
    k = (n - l) // 2
    const = (-1.0) ** k * np.sqrt(2 * n + 3) * binom((n + l + 3) // 2 - 1, k)
    x = r / r_max
    E = np.empty((len(n), len(r)))
    for nn, ll in sorted(set(zip(n, l))):                           # loop over (n, l) like theirs
        idx = (n == nn) & (l == ll)
        E[idx] = hyp2f1(-(nn - ll) / 2, (nn + ll + 3) / 2, ll + 1.5, x ** 2) * x ** ll
    Y = np.empty((len(n), len(r)), dtype=complex)
    for ll in range(lmax + 1):
        for mm in range(-ll, ll + 1):
            idx = (l == ll) & (m == mm)
            Y[idx] = np.conj(sph_harm_y(ll, mm, theta, phi))
    basis = const[:, None] * E * Y                                  # [nlm, N]
    basis = basis / np.sum(np.abs(basis) ** 2, axis=0)[None]        # "square" normalisation
    coeffs = np.einsum("cN,nN->cn", weights, basis)                 # [c, nlm] complex
    out = {}
    for ll in range(lmax + 1):                                      # complex -> real SH
        nr = n_radial(ll, n_max)
        blk = coeffs[:, l == ll].reshape(n_channels * nr, 2 * ll + 1)   # m = -l..l
        real = np.empty(blk.shape)
        # conj(Y) was summed, so conj(coefficient) = sum Y: standard real SH (Condon-Shortley)
        for mm in range(-ll, ll + 1):
            c = np.conj(blk[:, abs(mm) + ll])
            if mm == 0:
                real[:, ll] = c.real
            else:
                real[:, mm + ll] = math.sqrt(2) * (-1) ** mm * (c.real if mm > 0 else c.imag)
        out[ll] = real
    return out


def _norms_ours(f: torch.Tensor, n_channels, lmax, n_max):
    norms, col = [], 0
    for l in range(lmax + 1):
        width = n_channels * n_radial(l, n_max) * (2 * l + 1)
        norms.append(f[:, col:col + width].reshape(len(f), -1, 2 * l + 1).norm(dim=2))
        col += width
    return torch.cat(norms, dim=1)


def _authors_norms(hologram: dict, lmax: int) -> np.ndarray:
    """Per-(channel, n, l) norms of their ``get_hologram`` output ``{str(l): [C * n_l, 2l+1]}``
    (rows: channel-major, then n, as ours)."""
    return np.concatenate([np.linalg.norm(hologram[str(l)], axis=1) for l in range(lmax + 1)])


def _authors_contender(authors, pts, ch, off, cfg, ours_norms):
    """Their transform on the first ``authors_neighbourhoods`` neighbourhoods, checked, as a
    ``(fn, items)`` contender; and the largest relative deviation from proportionality."""
    get_hologram = authors.get_hologram()
    na = cfg["authors_neighbourhoods"]
    ks = np.arange(cfg["n_max"] + 1)
    n_combi = [cfg["n_channels"] * int(np.count_nonzero((ks >= l) & (ks % 2 == l % 2))) for l in range(cfg["lmax"] + 1)]
    nbs = [authors.neighbourhood(pts[off[b]:off[b + 1]].numpy(), ch[off[b]:off[b + 1]].numpy(), ELEMENTS)
           for b in range(na)]

    def fn():
        return [get_hologram(nh, cfg["lmax"], ks, n_combi, cfg["r_max"], mode="ns", channels=ELEMENTS,
                             rst_normalization=cfg["normalization"])[0] for nh in nbs]
    theirs = np.stack([_authors_norms(h, cfg["lmax"]) for h in fn()])
    mine = ours_norms[:na].numpy()
    factor = np.median(theirs[mine > 1e-6 * mine.max()] / mine[mine > 1e-6 * mine.max()])
    dev = float(np.abs(theirs - factor * mine).max() / np.abs(theirs).max())
    if dev > 1e-4:   # their float32 output
        raise AssertionError(f"the authors' get_hologram and holovae disagree (max deviation {dev:.2e} "
                             f"from one global factor {factor:.4g})")
    return (fn, na), dev, float(factor)


def run(out_dir, device: str = "cpu", authors=None) -> list[dict]:
    """Time the implementations; write ``<out_dir>/zft.json``; return the records."""
    cfg = CONFIG
    kw = dict(n_channels=cfg["n_channels"], lmax=cfg["lmax"], n_max=cfg["n_max"], r_max=cfg["r_max"],
              radial=cfg["radial"], normalization=cfg["normalization"])
    pts, ch, off = synthetic_neighbourhoods(cfg["fast_neighbourhoods"], cfg["atoms"], cfg["r_max"])

    # agreement first (per-(channel, n, l) norms do not depend on the real-SH convention)
    nb = cfg["baseline_neighbourhoods"]
    ours = zernike_transform(pts[: off[nb]], ch[: off[nb]], off[: nb + 1], dtype=torch.float64, **kw)
    base = []
    t0 = time.perf_counter()
    for b in range(nb):
        s = slice(int(off[b]), int(off[b + 1]))
        blocks = baseline_one(pts[s].double().numpy(), ch[s].numpy(), cfg["n_channels"], cfg["lmax"],
                              cfg["n_max"], cfg["r_max"])
        base.append(np.concatenate([np.linalg.norm(blocks[l], axis=1) for l in range(cfg["lmax"] + 1)]))
    baseline_per_s = nb / (time.perf_counter() - t0)
    err = np.abs(np.stack(base) - _norms_ours(ours, cfg["n_channels"], cfg["lmax"], cfg["n_max"]).numpy()).max()
    if err > 1e-8 * np.abs(np.stack(base)).max():
        raise AssertionError(f"baseline and holovae disagree (max norm difference {err:.2e})")

    fast = (lambda: zernike_transform(pts, ch, off, **kw), cfg["fast_neighbourhoods"])
    config = dict(cfg, max_norm_difference=float(err), transform_device="cpu")
    if authors is None:
        fast_per_s = per_second(*fast, min_time=3.0)
        return [record(name="zft", config=config, baseline_per_s=baseline_per_s, fast_per_s=fast_per_s,
                       device="cpu", out_dir=out_dir, unit="neighbourhoods/s")]

    n_auth = cfg["authors_neighbourhoods"]
    ours_norms = _norms_ours(zernike_transform(pts[: off[n_auth]], ch[: off[n_auth]], off[: n_auth + 1],
                                               dtype=torch.float64, **kw), cfg["n_channels"], cfg["lmax"], cfg["n_max"])
    theirs, dev, factor = _authors_contender(authors, pts, ch, off, cfg, ours_norms)

    def reference():
        for b in range(nb):
            s = slice(int(off[b]), int(off[b + 1]))
            baseline_one(pts[s].double().numpy(), ch[s].numpy(), cfg["n_channels"], cfg["lmax"], cfg["n_max"],
                         cfg["r_max"])
    before = conditions()
    rates = interleaved({"authors": theirs, "reference": (reference, nb), "auto": fast}, rounds=5, min_time=2.0)
    med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
    extra = {"rounds": 5, "rates": {k: [round(r, 2) for r in v] for k, v in rates.items()},
             "authors_per_s": round(med["authors"], 3),
             "speedup_vs_authors": ratio(rates["auto"], rates["authors"])["median"],
             "speedup_vs_authors_range": ratio(rates["auto"], rates["authors"]),
             "reference_vs_authors": ratio(rates["reference"], rates["authors"]),
             "authors_code": authors.describe(),
             "authors_function": "experiments/protein_neighborhoods/src/preprocessing_faster/utils/zernikegrams.py:get_hologram",
             "authors_max_deviation_from_proportional": dev, "authors_global_factor": factor,
             "conditions": {"before": before, "after": conditions()}}
    return [record(name="zft", config=config, baseline_per_s=med["reference"], fast_per_s=med["auto"],
                   device="cpu", out_dir=out_dir, unit="neighbourhoods/s", extra=extra)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="benchmarks/out")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    for rec in run(args.out_dir, args.device):
        print(json.dumps(rec, indent=2))
