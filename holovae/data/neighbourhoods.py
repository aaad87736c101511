"""Residue-centred point clouds of a :class:`~holovae.data.structures.Structure`, ready for
:func:`holovae.transforms.zernike_transform` (ragged ``points / channels / offsets``).

* :func:`neighbourhoods` -- the protein-neighbourhood experiment: for each standard amino acid
  with N, Cα and C, all atoms within ``r_max`` of its Cα, centred there; the central residue's
  own atoms stay in, only its Cα (which would sit at the origin) is dropped.
* :func:`residue_clouds` -- the amino-acid-conformation experiment: the residue's own atoms
  only, centred at its Cα (its Cα dropped by default, see ``drop_ca``).

Atoms get a channel from an element list (default C, N, O, S; :func:`check_elements`); other
elements are dropped or go to one extra "other" channel. :func:`drop_empty_clouds` and
:func:`no_centre_reason` say why a residue or a whole structure gave no cloud.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .structures import ELEMENTS, STANDARD_AA, Structure

__all__ = ["Clouds", "DEFAULT_ELEMENTS", "BACKBONE", "MAX_RESIDUE_RADIUS", "atom_channels", "check_elements",
           "centre_residues", "neighbourhoods", "residue_clouds", "residue_ids", "drop_empty_clouds",
           "no_centre_reason"]

DEFAULT_ELEMENTS = ("C", "N", "O", "S")
BACKBONE = ("N", "CA", "C")
# No atom of a standard amino acid lies farther from its Cα (the longest, arginine's NH, lies
# <= 7.42 Å from it in all 207,199 residues of the 444 structures under ../shared/data).
MAX_RESIDUE_RADIUS = 10.0


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


def check_elements(elements: Sequence[str]) -> list[str]:
    """The channel elements, upper case; ``ValueError`` for an empty list, a repeat, a symbol
    that is no element (``Q``: every atom would be dropped and every coefficient 0) and
    hydrogen (removed when parsing, so its channel would always be empty)."""
    names = [str(e).strip().upper() for e in elements]
    if not names:
        raise ValueError("the element list is empty")
    repeats = sorted({e for e in names if names.count(e) > 1})
    if repeats:
        raise ValueError(f"element list {list(elements)}: {', '.join(repeats)} repeated (one channel per element)")
    unknown = [e for e in names if e not in ELEMENTS]
    if unknown:
        raise ValueError(f"element list {list(elements)}: {', '.join(map(repr, unknown))} "
                         f"{'is not an element symbol' if len(unknown) == 1 else 'are not element symbols'}")
    hydrogens = [e for e in names if e in ("H", "D")]
    if hydrogens:
        raise ValueError(f"element list {list(elements)}: {', '.join(hydrogens)}: hydrogens are removed when "
                         "parsing, so the channel would always be empty")
    return names


def atom_channels(element: np.ndarray, elements: Sequence[str] = DEFAULT_ELEMENTS,
                  other_channel: bool = False) -> tuple[np.ndarray, int]:
    """Channel per atom ``[A]`` int64 from ``element [A]`` and an element list
    (:func:`check_elements`).

    Elements not in the list get channel ``len(elements)`` with ``other_channel``, else -1
    (dropped). Returns ``(channels, n_channels)``. Matching is on whole symbols: ``"SE"`` is
    never ``"S"``.
    """
    names = check_elements(elements)
    other = len(names) if other_channel else -1
    uniq, inverse = np.unique(np.asarray(element, dtype=str), return_inverse=True)
    lut = np.array([names.index(u) if u in names else other for u in uniq.tolist()], dtype=np.int64)
    return lut[inverse.reshape(-1)] if uniq.size else np.zeros(0, np.int64), len(names) + bool(other_channel)


def centre_residues(s: Structure) -> tuple[np.ndarray, list]:
    """Residues that get a cloud: standard amino acids (not HETATM) with N, CA and C, and no
    atom farther than :data:`MAX_RESIDUE_RADIUS` from their Cα (corrupt coordinates: a
    residue's own atom that far would silently fall out of its cloud, or shift a
    neighbourhood).

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
    # the farthest own atom of each residue with a Cα, from that Cα
    atom_ok = ok[s.residue_index]
    d = np.zeros(s.n_atoms)
    own_ca = s.ca_index[s.residue_index[atom_ok]]
    d[atom_ok] = np.linalg.norm(s.coords[atom_ok].astype(np.float64) - s.coords[own_ca], axis=1)
    far = np.zeros(s.n_residues)
    np.maximum.at(far, s.residue_index, d)
    for r in np.flatnonzero(ok & (far > MAX_RESIDUE_RADIUS)).tolist():
        atoms = np.flatnonzero(s.residue_index == r)
        a = atoms[np.argmax(d[atoms])]
        skipped.append((r, f"atom {s.atom_name[a]} lies {d[a]:.4g} Å from its Cα (more than "
                           f"{MAX_RESIDUE_RADIUS:g} Å: corrupt coordinates)"))
        ok[r] = False
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
    atoms = cKDTree(s.coords.astype(np.float64))
    # every (centre, atom) pair within r_max (inclusive) in one query that returns arrays (the
    # per-centre lists of query_ball_point cost twice as much); sorted by centre, then atom
    # index: file order within each cloud (reproducible output)
    pairs = cKDTree(centres.astype(np.float64)).sparse_distance_matrix(atoms, r_max, output_type="ndarray")
    key = pairs["i"].astype(np.int64) * s.n_atoms + pairs["j"]
    key.sort()
    idx = key % s.n_atoms
    counts = np.bincount(key // s.n_atoms, minlength=len(residues))
    not_centre = idx != np.repeat(ca, counts)          # drop the central Cα (it sits at the origin)
    cloud = np.repeat(np.arange(len(residues)), counts)[not_centre]
    idx = idx[not_centre]
    counts = np.bincount(cloud, minlength=len(residues))
    return _assemble(s, residues, [idx], counts, centres, channels, n_channels, skipped)


def residue_clouds(s: Structure, elements: Sequence[str] = DEFAULT_ELEMENTS,
                   other_channel: bool = False, drop_ca: bool = True) -> Clouds:
    """Each centre residue's own atoms, centred at its Cα (the amino-acid-conformation data,
    L = 4 in the paper). ``drop_ca`` removes the Cα as in :func:`neighbourhoods` (the authors'
    code always does: their transform is undefined at r = 0). Kept, the Cα at the origin adds
    the same vector to every residue's coefficients, ``R_n0(0) Y_00`` in the carbon channel's
    l = 0 terms (times the point's weight under square normalisation), and nothing to l > 0."""
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


def drop_empty_clouds(c: Clouds, elements: Sequence[str]) -> Clouds:
    """``c`` without its empty clouds (no atom of a channel element: all-zero coefficients),
    each added to ``skipped`` with the reason."""
    sizes = np.diff(c.offsets)
    empty = sizes == 0
    if not empty.any():
        return c
    reason = f"no atom of the channel elements ({','.join(elements)}) in its cloud"
    keep = ~empty
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(sizes[keep], out=offsets[1:])
    return Clouds(points=c.points, channels=c.channels, offsets=offsets, residue=c.residue[keep],
                  n_channels=c.n_channels, skipped=c.skipped + [(int(r), reason) for r in c.residue[empty]])


def no_centre_reason(s: Structure) -> str:
    """Why :func:`centre_residues` found no residue in ``s`` (a structure of ligands only, of
    HETATM records only, without complete backbones ...)."""
    is_aa = np.isin(s.resname, list(STANDARD_AA))
    n_atom, n_het = int((is_aa & ~s.is_hetero).sum()), int((is_aa & s.is_hetero).sum())
    if n_atom:
        return f"none of its {n_atom} standard amino acids (ATOM records) has all of N, CA and C"
    if n_het:
        return (f"its {n_het} standard amino acid(s) are all HETATM records, read as ligands (only ATOM "
                "residues are centres)")
    return f"no standard amino acid among its {s.n_residues} residues"


def residue_ids(s: Structure, residues: np.ndarray) -> list[str]:
    """``"pdb|chain|resnum|icode|resname"`` for each residue index."""
    return [f"{s.name}|{s.chain[r]}|{s.resnum[r]}|{s.icode[r]}|{s.resname[r]}" for r in residues.tolist()]
