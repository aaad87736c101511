"""Structures -> residue neighbourhoods -> Zernike coefficients, for many files at once.

Each file is parsed (:mod:`holovae.data.structures`), cut into Cα-centred neighbourhoods
(:mod:`holovae.data.neighbourhoods`) and assigned secondary structure
(:mod:`holovae.data.secondary`); the Zernike transform runs once per chunk of neighbourhoods
drawn from several structures (one big ragged batch is much faster than a call per
structure). A file that fails is recorded in ``skipped`` with its reason and the rest go on;
so are residues without a full backbone. Used by ``holovae prepare-structures`` (training data)
and ``holovae embed-structures`` (a user's own structures).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..download import sha256_file

log = logging.getLogger("holovae")

AMINO_ACIDS = ("ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
               "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL")


@dataclass
class Featurized:
    """``coefficients [N, dim]`` float32 with ``irreps``; per row ``ids`` ("pdb|chain|resnum|icode|
    resname"), ``labels`` (index in :data:`AMINO_ACIDS`), ``secondary`` (H/E/L), ``resnames``;
    ``skipped`` rows ``(file, chain, resnum, reason)``; ``attrs``: every transform parameter,
    per-file sha256 and counts (what the HDF5 attributes hold)."""
    coefficients: np.ndarray
    irreps: object
    ids: list
    labels: np.ndarray
    secondary: np.ndarray
    resnames: np.ndarray
    skipped: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


CLOUD_KINDS = {"neighbourhood": "protein_neighbourhoods", "residue": "amino_acid_conformations"}


def transform_attrs(lmax: int, n_max: int, r_max: float, elements: Sequence[str], other_channel: bool,
                    normalization: Optional[str], radial: str, keep_hetero: bool,
                    clouds: str = "neighbourhood") -> dict:
    """The parameters that define the data (stored with it, and with models trained on it)."""
    if clouds not in CLOUD_KINDS:
        raise ValueError(f"clouds must be one of {sorted(CLOUD_KINDS)}, got {clouds!r}")
    return dict(kind=CLOUD_KINDS[clouds], lmax=lmax, n_max=n_max, r_max=r_max, elements=list(elements),
                other_channel=bool(other_channel), n_channels=len(elements) + bool(other_channel),
                normalization=normalization, radial=radial, keep_hetero=keep_hetero, centre="CA",
                central_ca_dropped=True, label_names=list(AMINO_ACIDS))


def featurize_structures(files, *, lmax: int, n_max: int = 20, r_max: float = 10.0,
                         elements: Sequence[str] = ("C", "N", "O", "S"), other_channel: bool = False,
                         normalization: Optional[str] = None, radial: str = "orthonormal",
                         secondary: str = "auto", keep_hetero: bool = True, chunk: int = 4096,
                         progress: bool = False, clouds: str = "neighbourhood") -> Featurized:
    """Neighbourhood coefficients of every standard residue of ``files`` (see module docstring).

    ``clouds="residue"`` gives the amino-acid-conformation data instead: each residue's own
    atoms only (:func:`holovae.data.neighbourhoods.residue_clouds`), ``r_max`` then only sets
    the radius of the Zernike basis."""
    import torch
    from tqdm import tqdm

    from ..transforms.zernike import zernike_irreps, zernike_transform
    from .neighbourhoods import neighbourhoods, residue_clouds, residue_ids
    from .secondary import secondary_structure
    from .structures import parse_structure

    elements = [e.strip().upper() for e in elements]
    cloud_kind = clouds
    attrs = transform_attrs(lmax, n_max, r_max, elements, other_channel, normalization, radial, keep_hetero, clouds)
    kw = dict(n_channels=attrs["n_channels"], lmax=lmax, n_max=n_max, r_max=r_max,
              normalization=normalization, radial=radial)
    irreps = zernike_irreps(attrs["n_channels"], lmax, n_max)
    pending, n_pending = [], 0
    coeffs, ids, ss, resnames, skipped = [], [], [], [], []
    checksums, methods = {}, {}
    t = {"parse_s": 0.0, "transform_s": 0.0}

    def flush():
        nonlocal pending, n_pending
        if not pending:
            return
        t0 = time.perf_counter()
        pts = np.concatenate([c.points for c, *_ in pending])
        chans = np.concatenate([c.channels for c, *_ in pending])
        offs, base = [np.zeros(1, np.int64)], 0
        for c, *_ in pending:
            offs.append(c.offsets[1:] + base)
            base += int(c.offsets[-1])
        out = zernike_transform(torch.from_numpy(pts), torch.from_numpy(chans),
                                torch.from_numpy(np.concatenate(offs)), **kw)
        coeffs.append(out.numpy())
        for _, i, s, r in pending:
            ids.extend(i)
            ss.append(s)
            resnames.append(r)
        pending, n_pending = [], 0
        t["transform_s"] += time.perf_counter() - t0

    start = time.perf_counter()
    n_ok = 0
    for path in tqdm([Path(f) for f in files], desc="structures", unit="file", disable=not progress):
        try:
            checksums[path.name] = sha256_file(path)
            t0 = time.perf_counter()
            s = parse_structure(path, keep_hetero=keep_hetero)
            t["parse_s"] += time.perf_counter() - t0
            if cloud_kind == "residue":
                clouds = residue_clouds(s, elements=elements, other_channel=other_channel)
            else:
                clouds = neighbourhoods(s, r_max=r_max, elements=elements, other_channel=other_channel)
            for r, reason in clouds.skipped:
                skipped.append((path, s.chain[r], f"{s.resnum[r]}{s.icode[r]}", reason))
            if secondary == "none":
                sec = np.full(s.n_residues, "-")
            else:
                sec, method = secondary_structure(s, path, method=secondary)
                methods[method] = methods.get(method, 0) + 1
            pending.append((clouds, residue_ids(s, clouds.residue), sec[clouds.residue], s.resname[clouds.residue]))
            n_pending += len(clouds)
            n_ok += 1
            if n_pending >= chunk:
                flush()
        except Exception as exc:        # one bad file must never end the run
            reason = str(exc) if str(path) in str(exc) else f"{path}: {type(exc).__name__}: {exc}"
            log.warning("skipping %s", reason)
            skipped.append((path, "", "", reason))
    flush()
    t["elapsed_s"] = time.perf_counter() - start
    resnames_arr = np.concatenate(resnames) if resnames else np.zeros(0, str)
    attrs.update(secondary_method=secondary, secondary_methods_used=methods, source_sha256=checksums,
                 n_files=len(files), n_files_ok=n_ok, n_skipped_rows=len(skipped))
    return Featurized(
        coefficients=np.concatenate(coeffs) if coeffs else np.zeros((0, irreps.dim), np.float32),
        irreps=irreps, ids=ids,
        labels=np.array([AMINO_ACIDS.index(r) for r in resnames_arr.tolist()], dtype=np.int64),
        secondary=np.concatenate(ss) if ss else np.zeros(0, str), resnames=resnames_arr,
        skipped=skipped, attrs=attrs, timings=t)
