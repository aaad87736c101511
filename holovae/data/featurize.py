"""Structures -> residue neighbourhoods -> Zernike coefficients, for many files at once.

Each file is parsed (:mod:`holovae.data.structures`), cut into Cα-centred neighbourhoods
(:mod:`holovae.data.neighbourhoods`) and assigned secondary structure
(:mod:`holovae.data.secondary`); the Zernike transform runs once per chunk of neighbourhoods
drawn from several structures (one big ragged batch is much faster than a call per
structure). A file that fails, at any step, is recorded in ``skipped`` with its reason and the
rest go on; so are residues without a full backbone or with an empty cloud. Used by
``holovae prepare-structures`` (training data) and ``holovae embed-structures`` (a user's own
structures).
"""
from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..atomic import write_tsv_atomic
from ..download import sha256_file

log = logging.getLogger("holovae")

AMINO_ACIDS = ("ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
               "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL")


@dataclass
class Featurized:
    """``coefficients [N, dim]`` float32 with ``irreps``; per row ``ids`` ("pdb|chain|resnum|icode|
    resname"), ``labels`` (index in :data:`AMINO_ACIDS`), ``secondary`` (H/E/L), ``resnames``;
    ``skipped`` rows ``(file, chain, resnum, reason)``; ``attrs``: every transform parameter,
    per-file sha256 and counts (what the HDF5 attributes hold).

    The rows are kept as the transform made them, ``blocks`` of ``[n_i, dim]`` in order;
    :func:`holovae.data.hdf5.write_dataset` writes them as they are, and ``coefficients`` joins
    them on first use (a 1 GB concatenation costs as much as the transform of its rows)."""
    blocks: list
    irreps: object
    ids: list
    labels: np.ndarray
    secondary: np.ndarray
    resnames: np.ndarray
    skipped: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def coefficients(self) -> np.ndarray:
        """All rows, ``[N, dim]`` float32."""
        if len(self.blocks) != 1:
            self.blocks = [np.concatenate(self.blocks) if self.blocks else
                           np.zeros((0, self.irreps.dim), np.float32)]
        return self.blocks[0]


SKIPPED_COLUMNS = ("file", "chain", "resnum", "reason")


def write_skipped(path, skipped: list) -> Path:
    """The ``skipped`` rows of a :class:`Featurized` as TSV (:data:`SKIPPED_COLUMNS`), atomically."""
    return write_tsv_atomic(path, SKIPPED_COLUMNS, skipped)


def refuse_empty(n_rows: int, files: list, skipped: list, label: str) -> None:
    """``ValueError`` when a run gave no row: names ``label`` (the split or output) and the
    first reasons of its ``files``."""
    if n_rows:
        return
    reasons = [str(row[3]) for row in skipped if row[1] == ""] or [str(row[3]) for row in skipped]
    shown = "; ".join(reasons[:5]) + (f"; ... ({len(reasons) - 5} more)" if len(reasons) > 5 else "")
    raise ValueError(f"{label}: no row from its {len(files)} input file(s), nothing written: "
                     f"{shown or 'no reason recorded'}")


CLOUD_KINDS = {"neighbourhood": "protein_neighbourhoods", "residue": "amino_acid_conformations"}


def transform_attrs(lmax: int, n_max: int, r_max: float, elements: Sequence[str], other_channel: bool,
                    normalization: Optional[str], radial: str, keep_hetero: bool,
                    clouds: str = "neighbourhood", drop_ca: bool = True) -> dict:
    """The parameters that define the data (stored with it, and with models trained on it).
    ``drop_ca``: whether the central Cα is left out (``central_ca_dropped``); neighbourhoods
    always leave it out, residue clouds by choice (:func:`~holovae.data.neighbourhoods.residue_clouds`)."""
    if clouds not in CLOUD_KINDS:
        raise ValueError(f"clouds must be one of {sorted(CLOUD_KINDS)}, got {clouds!r}")
    if clouds == "neighbourhood" and not drop_ca:
        raise ValueError("neighbourhood clouds always leave out the central Cα (as the authors' code); keeping it "
                         "is an option of residue clouds only")
    return dict(kind=CLOUD_KINDS[clouds], lmax=lmax, n_max=n_max, r_max=r_max, elements=list(elements),
                other_channel=bool(other_channel), n_channels=len(elements) + bool(other_channel),
                normalization=normalization, radial=radial, keep_hetero=keep_hetero, centre="CA",
                central_ca_dropped=bool(drop_ca), label_names=list(AMINO_ACIDS))


def file_reason(path, exc: BaseException) -> str:
    """One line naming ``path`` and why it was skipped."""
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: a directory, not a structure file"
    text = str(exc)
    return text if str(path) in text else f"{path}: {type(exc).__name__}: {text}"


@dataclass
class _Parsed:
    """One structure's clouds waiting for the batched transform, and their per-row data."""
    path: Path
    clouds: object
    ids: list
    secondary: np.ndarray
    resnames: np.ndarray


def featurize_structures(files, *, lmax: int, n_max: int = 20, r_max: float = 10.0,
                         elements: Sequence[str] = ("C", "N", "O", "S"), other_channel: bool = False,
                         normalization: Optional[str] = None, radial: str = "orthonormal",
                         secondary: str = "auto", keep_hetero: bool = True, chunk: int = 4096,
                         progress: bool = False, clouds: str = "neighbourhood", drop_ca: bool = True) -> Featurized:
    """Neighbourhood coefficients of every standard residue of ``files`` (see module docstring).

    ``clouds="residue"`` gives the amino-acid-conformation data instead: each residue's own
    atoms only (:func:`holovae.data.neighbourhoods.residue_clouds`, with ``drop_ca``),
    ``r_max`` then only sets the radius of the Zernike basis.

    Every file is isolated: one that cannot be read, parsed, cut into clouds or transformed is
    skipped with its reason (the transform runs on chunks of several files; when a chunk fails,
    its files are transformed one by one so that only the culprit is skipped), and so is one
    that gives no row (e.g. HETATM records only), with the reason. A failure that is not a
    known kind of bad input is logged with its traceback (a bug) and skipped too. Options are
    checked before any file is read: a bad element list is a ``ValueError``, not N skipped files.
    """
    import torch
    from tqdm import tqdm

    from ..transforms.zernike import zernike_irreps, zernike_transform
    from .neighbourhoods import (check_elements, drop_empty_clouds, neighbourhoods, no_centre_reason, residue_clouds,
                                 residue_ids)
    from .secondary import secondary_structure
    from .structures import StructureError, parse_structure

    elements = check_elements(elements)
    if secondary not in ("auto", "dssp", "geometry", "none"):
        raise ValueError(f"secondary must be 'auto', 'dssp', 'geometry' or 'none', got {secondary!r}")
    cloud_kind = clouds
    attrs = transform_attrs(lmax, n_max, r_max, elements, other_channel, normalization, radial, keep_hetero, clouds,
                            drop_ca)
    kw = dict(n_channels=attrs["n_channels"], lmax=lmax, n_max=n_max, r_max=r_max,
              normalization=normalization, radial=radial)
    irreps = zernike_irreps(attrs["n_channels"], lmax, n_max)
    # an empty call checks normalization, radial and r_max now, not once per chunk of files
    zernike_transform(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.zeros(1, dtype=torch.long), **kw)
    expected = (StructureError, OSError, EOFError, RuntimeError, subprocess.SubprocessError)
    pending: list[_Parsed] = []
    coeffs, ids, ss, resnames, skipped = [], [], [], [], []
    checksums, methods = {}, {}
    t = {"parse_s": 0.0, "transform_s": 0.0}
    count = {"ok": 0, "pending_rows": 0}

    def skip(path, reason):
        log.warning("skipping %s", reason)
        skipped.append((path, "", "", reason))

    def transform(items: list) -> np.ndarray:
        pts = np.concatenate([p.clouds.points for p in items])
        chans = np.concatenate([p.clouds.channels for p in items])
        offs, base = [np.zeros(1, np.int64)], 0
        for p in items:
            offs.append(p.clouds.offsets[1:] + base)
            base += int(p.clouds.offsets[-1])
        return zernike_transform(torch.from_numpy(pts), torch.from_numpy(chans),
                                 torch.from_numpy(np.concatenate(offs)), **kw).numpy()

    def flush():
        nonlocal pending
        if not pending:
            return
        t0 = time.perf_counter()
        try:
            out = transform(pending)
            parts = np.split(out, np.cumsum([len(p.clouds) for p in pending])[:-1])
        except Exception:               # find the file(s) to blame: one transform per file
            parts = []
            for p in pending:
                try:
                    parts.append(transform([p]))
                except Exception as exc:
                    skip(p.path, f"{p.path}: Zernike transform failed ({type(exc).__name__}: {exc})")
                    parts.append(None)
                    count["ok"] -= 1
        for p, out in zip(pending, parts):
            if out is None:
                continue
            coeffs.append(out)
            ids.extend(p.ids)
            ss.append(p.secondary)
            resnames.append(p.resnames)
        pending, count["pending_rows"] = [], 0
        t["transform_s"] += time.perf_counter() - t0

    start = time.perf_counter()
    for path in tqdm([Path(f) for f in files], desc="structures", unit="file", disable=not progress):
        try:
            checksums[path.name] = sha256_file(path)
            t0 = time.perf_counter()
            s = parse_structure(path, keep_hetero=keep_hetero)
            t["parse_s"] += time.perf_counter() - t0
            if cloud_kind == "residue":
                c = residue_clouds(s, elements=elements, other_channel=other_channel, drop_ca=drop_ca)
            else:
                c = neighbourhoods(s, r_max=r_max, elements=elements, other_channel=other_channel)
            n_centres = len(c)
            c = drop_empty_clouds(c, elements)
            for r, reason in c.skipped:
                skipped.append((path, s.chain[r], f"{s.resnum[r]}{s.icode[r]}", reason))
            if len(c) == 0:
                raise StructureError(f"{path}: no row: " + (no_centre_reason(s) if n_centres == 0 else
                                     f"none of its {n_centres} residue clouds has an atom of {','.join(elements)}"))
            if secondary == "none":
                sec = np.full(s.n_residues, "-")
            else:
                sec, method = secondary_structure(s, path, method=secondary)
                methods[method] = methods.get(method, 0) + 1
            pending.append(_Parsed(path, c, residue_ids(s, c.residue), sec[c.residue], s.resname[c.residue]))
            count["pending_rows"] += len(c)
            count["ok"] += 1
        except expected as exc:         # bad input: one bad file must never end the run
            skip(path, file_reason(path, exc))
            continue
        except Exception as exc:        # a bug: say so, with the traceback, and go on
            log.error("internal error on %s", path, exc_info=True)
            skip(path, f"{path}: internal error ({type(exc).__name__}: {exc}); please report it")
            continue
        if count["pending_rows"] >= chunk:
            flush()
    flush()
    t["elapsed_s"] = time.perf_counter() - start
    resnames_arr = np.concatenate(resnames) if resnames else np.zeros(0, str)
    attrs.update(secondary_method=secondary, secondary_methods_used=methods, source_sha256=checksums,
                 n_files=len(files), n_files_ok=count["ok"], n_skipped_rows=len(skipped))
    return Featurized(
        blocks=coeffs, irreps=irreps, ids=ids,
        labels=np.array([AMINO_ACIDS.index(r) for r in resnames_arr.tolist()], dtype=np.int64),
        secondary=np.concatenate(ss) if ss else np.zeros(0, str), resnames=resnames_arr,
        skipped=skipped, attrs=attrs, timings=t)
