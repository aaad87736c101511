"""Complexes -> pocket-residue neighbourhoods -> Zernike coefficients, many complexes at once.

The transform is the one of the protein-neighbourhood data, so that a model trained on those can
embed these (:func:`~holovae.data.lba.transform.transform_mismatches` says whether the parameters
agree). A complex that cannot be used is skipped with its reason (no affinity in the index, no
protein file, unreadable protein or ligand, no pocket residue); the others go on.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from ..featurize import AMINO_ACIDS, transform_attrs
from ..neighbourhoods import DEFAULT_ELEMENTS, centre_residues, residue_ids
from .errors import ComplexError
from .pockets import complex_neighbourhoods, pocket_description, residue_ligand_distance

__all__ = ["KIND", "LBAFeaturized", "featurize_complexes"]

log = logging.getLogger("holovae")

KIND = "lba_pocket_neighbourhoods"


@dataclass
class LBAFeaturized:
    """Pocket-residue neighbourhood coefficients of M complexes (N rows, grouped by complex).

    Per row: ``coefficients [N, dim]`` float32 with ``irreps``, ``complex_index [N]`` int64 (into
    the per-complex arrays; rows of one complex are contiguous), ``ids [N]``
    ("pdb|chain|resnum|icode|resname"), ``residue_labels [N]`` (index in
    :data:`~holovae.data.featurize.AMINO_ACIDS`; the ``labels`` of the HDF5 file).
    Per complex: ``complex_ids [M]``, ``affinity [M]`` float64 (pK; NaN without a table),
    ``n_pocket [M]`` int64, ``receptor [M]`` ("protein" / "pocket"), ``ligand_file [M]``.
    ``skipped``: ``(complex id, reason)`` rows (complexes, and pocket residues without a full
    backbone: "id|chain|resnum|icode|resname"); ``attrs``: transform parameters and provenance.
    """

    coefficients: np.ndarray
    irreps: object
    complex_index: np.ndarray
    ids: list
    residue_labels: np.ndarray
    complex_ids: np.ndarray
    affinity: np.ndarray
    n_pocket: np.ndarray
    receptor: np.ndarray
    ligand_file: np.ndarray
    skipped: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.coefficients.shape[0])

    def rows_of(self, complex_id: str) -> np.ndarray:
        """Row indices of one complex's pocket residues."""
        return np.flatnonzero(self.complex_index == list(self.complex_ids).index(complex_id.lower()))


def _transform_clouds(clouds: list, **kw) -> np.ndarray:
    """One Zernike transform over several :class:`Clouds` (a ragged batch): ``[sum B, dim]``."""
    import torch

    from ...transforms.zernike import zernike_transform

    pts = np.concatenate([c.points for c in clouds])
    chans = np.concatenate([c.channels for c in clouds])
    offs, base = [np.zeros(1, np.int64)], 0
    for c in clouds:
        offs.append(c.offsets[1:] + base)
        base += int(c.offsets[-1])
    return zernike_transform(torch.from_numpy(pts), torch.from_numpy(chans),
                             torch.from_numpy(np.concatenate(offs)), **kw).numpy()


def featurize_complexes(complexes, affinities: Optional[Mapping[str, float]], *, lmax: int, n_max: int = 20,
                        r_max: float = 10.0, elements: Sequence[str] = DEFAULT_ELEMENTS,
                        other_channel: bool = False, normalization: Optional[str] = None,
                        radial: str = "orthonormal", pocket_cutoff: float = 10.0, pocket_rule: str = "ca",
                        keep_hetero: bool = True, chunk: int = 4096, progress: bool = False) -> LBAFeaturized:
    """Pocket-residue neighbourhood coefficients of ``complexes`` (see the module docstring).

    ``complexes``: :class:`ComplexFiles` (from :func:`find_complexes`) or any objects with
    ``pdb_id`` and ``load() -> (Structure, Ligand)`` (:class:`LoadedComplex`, :meth:`Atom3DLMDB.complexes`).
    ``affinities``: ``{pdb id: pK}`` (:func:`read_pdbbind_index`); a complex missing from it is
    skipped. ``None``: unlabelled (affinity NaN). ``pocket_rule`` / ``pocket_cutoff``:
    :func:`~holovae.data.lba.pockets.pocket_mask` (rule ``"listed"`` reads each complex's
    ``listed_pocket`` after ``load()``). The transform runs once per ``chunk`` neighbourhoods
    drawn from several complexes. A complex that fails is skipped with its reason, never ends
    the run.
    """
    from tqdm import tqdm

    from ...download import sha256_file
    from ...transforms.zernike import zernike_irreps

    elements = [e.strip().upper() for e in elements]
    attrs = transform_attrs(lmax, n_max, r_max, elements, other_channel, normalization, radial, keep_hetero)
    attrs.update(kind=KIND, pocket_cutoff=float(pocket_cutoff), pocket_rule=pocket_rule,
                 pocket="standard residues with N, CA, C: " + pocket_description(pocket_rule, pocket_cutoff),
                 environment="receptor heavy atoms (hetero groups kept: keep_hetero) + ligand heavy atoms; "
                             "no waters, no hydrogens",
                 affinity="pK = -log10(Kd or Ki / M) from the affinity table", labels="residue type (label_names)")
    kw = dict(n_channels=attrs["n_channels"], lmax=lmax, n_max=n_max, r_max=r_max,
              normalization=normalization, radial=radial)
    irreps = zernike_irreps(attrs["n_channels"], lmax, n_max)
    complexes = list(complexes)
    if affinities is not None:
        affinities = {str(k).lower(): v for k, v in affinities.items()}
    coeffs, pending, n_pending = [], [], 0
    ids, labels, complex_index = [], [], []
    kept = {"complex_ids": [], "affinity": [], "n_pocket": [], "receptor": [], "ligand_file": []}
    skipped, checksums, receptors, seen = [], {}, {}, set()
    t = {"parse_s": 0.0, "transform_s": 0.0}

    def flush():
        nonlocal pending, n_pending
        if pending:
            t0 = time.perf_counter()
            coeffs.append(_transform_clouds(pending, **kw))
            t["transform_s"] += time.perf_counter() - t0
        pending, n_pending = [], 0

    start = time.perf_counter()
    for item in tqdm(complexes, desc="complexes", unit="complex", disable=not progress):
        pid = str(item.pdb_id).lower()
        try:
            if pid in seen:
                raise ComplexError(f"duplicate complex id {pid} (the first one was used)")
            affinity = math.nan if affinities is None else affinities.get(pid)
            if affinity is None:
                raise ComplexError(f"{pid} is not in the affinity table")
            t0 = time.perf_counter()
            s, ligand = item.load(keep_hetero=keep_hetero)
            t["parse_s"] += time.perf_counter() - t0
            s = dataclasses.replace(s, name=pid)
            listed = getattr(item, "listed_pocket", None) if pocket_rule == "listed" else None
            if pocket_rule == "listed" and listed is None:
                raise ComplexError("pocket rule 'listed' needs the complex's own pocket table (an ATOM3D item's "
                                   "atoms_pocket); this complex has none")
            clouds = complex_neighbourhoods(s, ligand, pocket_cutoff=pocket_cutoff, r_max=r_max,
                                            elements=elements, other_channel=other_channel,
                                            pocket_rule=pocket_rule, listed=listed)
            for r, reason in clouds.skipped:
                skipped.append((residue_ids(s, np.array([r]))[0], f"pocket residue skipped: {reason}"))
            if len(clouds) == 0:
                if pocket_rule == "listed":
                    raise ComplexError(f"no pocket residue: none of the {len(listed)} Cα of the pocket table is "
                                       "the Cα of a standard amino acid with N, CA, C in the receptor")
                d = residue_ligand_distance(s, centre_residues(s)[0], ligand.coords, pocket_rule)
                raise ComplexError(f"no pocket residue: no {pocket_description(pocket_rule, pocket_cutoff)} "
                                   f"(closest {d.min(initial=math.inf):.1f} Å; ligand of {ligand.n_atoms} heavy atoms)")
            for path in getattr(item, "files", lambda: [])():
                checksums[f"{pid}/{Path(path).name}"] = sha256_file(path)
            kind = getattr(item, "receptor_kind", "protein")
            receptors[kind] = receptors.get(kind, 0) + 1
            m = len(kept["complex_ids"])
            seen.add(pid)
            for key, value in (("complex_ids", pid), ("affinity", float(affinity)), ("n_pocket", len(clouds)),
                               ("receptor", kind), ("ligand_file", Path(ligand.source).name)):
                kept[key].append(value)
            ids.extend(residue_ids(s, clouds.residue))
            labels.append(np.array([AMINO_ACIDS.index(r) for r in s.resname[clouds.residue].tolist()], np.int64))
            complex_index.append(np.full(len(clouds), m, dtype=np.int64))
            pending.append(clouds)
            n_pending += len(clouds)
            if n_pending >= chunk:
                flush()
        except Exception as exc:        # one bad complex must never end the run
            reason = str(exc) if isinstance(exc, ComplexError) else f"{type(exc).__name__}: {exc}"
            log.warning("skipping complex %s: %s", pid, reason)
            skipped.append((pid, reason))
    flush()
    t["elapsed_s"] = time.perf_counter() - start
    n_ok = len(kept["complex_ids"])
    attrs.update(source_sha256=checksums, receptors_used=receptors, n_complexes=len(complexes),
                 n_complexes_ok=n_ok, n_skipped_rows=len(skipped))
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
    return LBAFeaturized(
        coefficients=cat(coeffs, np.float32).reshape(-1, irreps.dim), irreps=irreps,
        complex_index=cat(complex_index, np.int64), ids=ids, residue_labels=cat(labels, np.int64),
        complex_ids=np.asarray(kept["complex_ids"], dtype=str),
        affinity=np.asarray(kept["affinity"], dtype=np.float64),
        n_pocket=np.asarray(kept["n_pocket"], dtype=np.int64),
        receptor=np.asarray(kept["receptor"], dtype=str), ligand_file=np.asarray(kept["ligand_file"], dtype=str),
        skipped=skipped, attrs=attrs, timings=t)
