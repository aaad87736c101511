"""Residue-centred point clouds of a :class:`~holovae.data.structures.Structure`, ready for
:func:`holovae.transforms.zernike_transform` (ragged ``points / channels / offsets``).

* :func:`neighbourhoods` -- the protein-neighbourhood experiment: for each standard amino acid
  with N, Cα and C, all atoms within ``r_max`` of its Cα, centred there; the central residue's
  own atoms stay in, only its Cα (which would sit at the origin) is dropped.
* :func:`residue_clouds` -- the amino-acid-conformation experiment: the residue's own atoms
  only, centred at its Cα.

Atoms get a channel from an element list (default C, N, O, S); other elements are dropped or
go to one extra "other" channel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .structures import STANDARD_AA, Structure

__all__ = ["Clouds", "DEFAULT_ELEMENTS", "BACKBONE", "atom_channels", "centre_residues",
           "neighbourhoods", "residue_clouds", "residue_ids"]

DEFAULT_ELEMENTS = ("C", "N", "O", "S")
BACKBONE = ("N", "CA", "C")


@dataclass
class Clouds:
    """B point clouds of one structure, concatenated.

    ``points [P, 3]`` float32 (Å, centred at each cloud's Cα), ``channels [P]`` int64,
    ``offsets [B+1]`` int64 (cloud b is ``points[offsets[b]:offsets[b+1]]``), ``residue [B]``
    int64 (index into the structure's residue arrays), ``n_channels``, and ``skipped``: one
    ``(residue index, reason)`` per residue that got no cloud.
    """

    points: np.ndarray
    channels: np.ndarray
    offsets: np.ndarray
    residue: np.ndarray
    n_channels: int
    skipped: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.residue.shape[0])


def atom_channels(element: np.ndarray, elements: Sequence[str] = DEFAULT_ELEMENTS,
                  other_channel: bool = False) -> tuple[np.ndarray, int]:
    """Channel per atom ``[A]`` int64 from ``element [A]`` and an element list.

    Elements not in the list get channel ``len(elements)`` with ``other_channel``, else -1
    (dropped). Returns ``(channels, n_channels)``. Matching is on whole symbols: ``"SE"`` is
    never ``"S"``.
    """
    names = [e.strip().upper() for e in elements]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"element list must be non-empty and without repeats, got {list(elements)}")
    other = len(names) if other_channel else -1
    uniq, inverse = np.unique(np.asarray(element, dtype=str), return_inverse=True)
    lut = np.array([names.index(u) if u in names else other for u in uniq.tolist()], dtype=np.int64)
    return lut[inverse.reshape(-1)] if uniq.size else np.zeros(0, np.int64), len(names) + bool(other_channel)


def centre_residues(s: Structure) -> tuple[np.ndarray, list]:
    """Residues that get a cloud: standard amino acids (not HETATM) with N, CA and C.

    Returns ``(residue indices [B] int64, skipped [(residue index, reason)])``; only amino
    acids are reported as skipped (ligands and waters are simply not centres).
    """
    is_aa = np.isin(s.resname, list(STANDARD_AA)) & ~s.is_hetero
    has = {}
    for name in BACKBONE:
        flag = np.zeros(s.n_residues, dtype=bool)
        flag[s.residue_index[s.atom_name == name]] = True
        has[name] = flag
    has["CA"] &= s.ca_index >= 0     # a "CA" that is not carbon (calcium) is no Cα
    ok = is_aa & has["N"] & has["CA"] & has["C"]
    skipped = []
    for r in np.flatnonzero(is_aa & ~ok).tolist():
        missing = [n for n in BACKBONE if not has[n][r]]
        skipped.append((r, "missing backbone atom(s) " + ",".join(missing)))
    return np.flatnonzero(ok).astype(np.int64), skipped


def _assemble(s, residues, atom_lists, counts, centres, channels, n_channels, skipped):
    """Flatten per-cloud atom index lists into :class:`Clouds` (drops channel -1 atoms)."""
    idx = np.concatenate(atom_lists) if len(atom_lists) else np.zeros(0, np.int64)
    idx = idx.astype(np.int64, copy=False)
    cloud = np.repeat(np.arange(len(residues)), counts)
    keep = channels[idx] >= 0
    idx, cloud = idx[keep], cloud[keep]
    points = s.coords[idx] - centres[cloud]
    offsets = np.zeros(len(residues) + 1, dtype=np.int64)
    np.cumsum(np.bincount(cloud, minlength=len(residues)), out=offsets[1:])
    return Clouds(points=points.astype(np.float32, copy=False), channels=channels[idx],
                  offsets=offsets, residue=residues, n_channels=n_channels, skipped=skipped)


def neighbourhoods(s: Structure, r_max: float = 10.0, elements: Sequence[str] = DEFAULT_ELEMENTS,
                   other_channel: bool = False) -> Clouds:
    """All atoms within ``r_max`` (inclusive) of each centre residue's Cα, centred at the Cα,
    the central Cα itself removed. Atoms are listed in file order within each cloud."""
    from scipy.spatial import cKDTree

    residues, skipped = centre_residues(s)
    channels, n_channels = atom_channels(s.element, elements, other_channel)
    ca = s.ca_index[residues]
    centres = s.coords[ca]
    if len(residues) == 0:
        return _assemble(s, residues, [], np.zeros(0, np.int64), centres, channels, n_channels, skipped)
    tree = cKDTree(s.coords.astype(np.float64))
    # one vectorised query for every Cα; sorted lists keep file order (reproducible output)
    lists = tree.query_ball_point(centres.astype(np.float64), r=r_max, return_sorted=True)
    counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    idx = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
    not_centre = idx != np.repeat(ca, counts)          # drop the central Cα (it sits at the origin)
    cloud = np.repeat(np.arange(len(residues)), counts)[not_centre]
    idx = idx[not_centre]
    counts = np.bincount(cloud, minlength=len(residues))
    return _assemble(s, residues, [idx], counts, centres, channels, n_channels, skipped)


def residue_clouds(s: Structure, elements: Sequence[str] = DEFAULT_ELEMENTS,
                   other_channel: bool = False, drop_ca: bool = True) -> Clouds:
    """Each centre residue's own atoms, centred at its Cα (the amino-acid-conformation data,
    L = 4 in the paper). ``drop_ca`` removes the Cα as in :func:`neighbourhoods`: at the origin
    it only adds a constant to the l = 0 coefficients."""
    residues, skipped = centre_residues(s)
    channels, n_channels = atom_channels(s.element, elements, other_channel)
    ca = s.ca_index[residues]
    # atoms of one residue are contiguous: [start, stop) per residue
    starts = np.searchsorted(s.residue_index, np.arange(s.n_residues), side="left")
    stops = np.searchsorted(s.residue_index, np.arange(s.n_residues), side="right")
    lists = []
    for r, c in zip(residues.tolist(), ca.tolist()):
        a = np.arange(starts[r], stops[r])
        lists.append(a[a != c] if drop_ca else a)
    counts = np.array([len(a) for a in lists], dtype=np.int64)
    return _assemble(s, residues, lists, counts, s.coords[ca], channels, n_channels, skipped)


def residue_ids(s: Structure, residues: np.ndarray) -> list[str]:
    """``"pdb|chain|resnum|icode|resname"`` for each residue index."""
    return [f"{s.name}|{s.chain[r]}|{s.resnum[r]}|{s.icode[r]}|{s.resname[r]}" for r in residues.tolist()]
