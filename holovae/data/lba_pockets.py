"""Which residues of a protein–ligand complex form its pocket: the paper's rule or ATOM3D's.

Three rules (``rule``), applied to the centre residues of the receptor (standard amino acids
with N, Cα and C, :func:`~holovae.data.neighbourhoods.centre_residues`) against the ligand's
heavy atoms:

* ``"ca"`` -- the paper's text: a residue whose Cα lies within ``cutoff`` (10 Å) of any ligand
  atom;
* ``"any_atom"`` -- ATOM3D's LBA pockets, which the authors' released code embeds: a residue
  with any heavy atom within ``cutoff`` (6 Å) of any ligand atom. ATOM3D measured on PDBbind's
  protonated protein files, the protein's hydrogens included; holovae reads no hydrogens, so on
  a PDBbind folder this rule can miss a residue that only a hydrogen brought within 6 Å;
* ``"listed"`` -- the residues the complex names itself: those whose Cα sits where a Cα row of
  an ATOM3D item's ``atoms_pocket`` table does (ATOM3D's own 6 Å pocket, exactly the centres of
  the authors' code, which takes the pocket's Cα coordinates; matched by position because a
  pocket file may name chains differently from its protein file).

The protocols (:data:`PROTOCOLS`) choose one: ``paper`` the Cα rule at 10 Å; ``authors``
ATOM3D's pocket (its table where the input has one, else the any-atom rule at 6 Å).
Distances are inclusive (``<= cutoff``).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .structures import Structure

__all__ = ["PROTOCOLS", "POCKET_RULES", "PROTOCOL_POCKET", "protocol_pocket", "pocket_protocol",
           "pocket_description", "pocket_mask", "residue_keys"]

PROTOCOLS = ("paper", "authors")
POCKET_RULES = ("ca", "any_atom", "listed")
# (rule, cutoff in Å) of each protocol; "authors" on an ATOM3D item uses its table (rule "listed")
PROTOCOL_POCKET = {"paper": ("ca", 10.0), "authors": ("any_atom", 6.0)}


def protocol_pocket(protocol: str, cutoff: Optional[float] = None, listed: bool = False) -> tuple[str, float]:
    """``(rule, cutoff)`` of ``protocol``; ``cutoff`` (Å), when given, replaces the protocol's.
    ``listed``: the complexes carry their own pocket table (ATOM3D items), which the authors'
    protocol then uses as it is (an explicit ``cutoff`` asks for the any-atom rule instead)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    rule, default = PROTOCOL_POCKET[protocol]
    if cutoff is not None and not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"pocket cutoff must be a positive number of Å, got {cutoff}")
    if protocol == "authors" and listed and cutoff is None:
        return "listed", default
    return rule, float(default if cutoff is None else cutoff)


def pocket_protocol(rule: str, cutoff: float) -> str:
    """The protocol whose pocket is ``(rule, cutoff)``: "paper", "authors", or "custom"."""
    if rule == "ca" and cutoff == PROTOCOL_POCKET["paper"][1]:
        return "paper"
    if rule == "listed" or (rule == "any_atom" and cutoff == PROTOCOL_POCKET["authors"][1]):
        return "authors"
    return "custom"


def pocket_description(rule: str, cutoff: float) -> str:
    """One sentence-part naming the rule, e.g. "residues whose Cα lies within 10 Å of a ligand atom"."""
    if rule == "ca":
        return f"residues whose Cα lies within {cutoff:g} Å of a ligand heavy atom"
    if rule == "any_atom":
        return f"residues with any heavy atom within {cutoff:g} Å of a ligand heavy atom (ATOM3D's rule)"
    if rule == "listed":
        return "the residues of each ATOM3D item's atoms_pocket table (ATOM3D's 6 Å pocket)"
    raise ValueError(f"pocket rule must be one of {POCKET_RULES}, got {rule!r}")


def residue_keys(s: Structure, residues: np.ndarray) -> list[tuple]:
    """``(chain, resnum, icode)`` of ``residues [B]`` (indices into ``s``), the key by which a
    pocket table names residues."""
    return [(str(s.chain[r]), int(s.resnum[r]), str(s.icode[r]).strip()) for r in np.asarray(residues).tolist()]


def _nearest_ligand_distance(points: np.ndarray, ligand_coords: np.ndarray) -> np.ndarray:
    """Distance ``[P]`` from each of ``points [P, 3]`` to its nearest of ``ligand_coords [A, 3]``
    (inf without any)."""
    from scipy.spatial import cKDTree

    ligand_coords = np.asarray(ligand_coords, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0 or len(ligand_coords) == 0:
        return np.full(len(points), np.inf)
    return cKDTree(ligand_coords).query(np.asarray(points, dtype=np.float64))[0]


def residue_ligand_distance(s: Structure, residues: np.ndarray, ligand_coords: np.ndarray, rule: str) -> np.ndarray:
    """Per residue of ``residues [B]`` the distance ``[B]`` that ``rule`` compares with the
    cutoff: its Cα's (``"ca"``) or its closest atom's (``"any_atom"``) to the nearest ligand atom."""
    residues = np.asarray(residues, dtype=np.int64)
    if rule == "ca":
        return _nearest_ligand_distance(s.coords[s.ca_index[residues]], ligand_coords)
    if rule != "any_atom":
        raise ValueError(f"rule {rule!r} has no distance (one of 'ca', 'any_atom')")
    d_atom = _nearest_ligand_distance(s.coords, ligand_coords)          # [A]
    d_res = np.full(s.n_residues, np.inf)
    np.minimum.at(d_res, s.residue_index, d_atom)
    return d_res[residues]


# two Cα are the same atom when this close (Å): PDB files round to 1e-3, ATOM3D's JSON to 1e-6
LISTED_TOLERANCE = 2e-3


def pocket_mask(s: Structure, residues: np.ndarray, ligand_coords: np.ndarray, rule: str, cutoff: float,
                listed: Optional[np.ndarray] = None) -> np.ndarray:
    """Which of ``residues [B]`` (indices into ``s``) are pocket residues under ``rule``:
    bool ``[B]``. ``listed``: the Cα coordinates ``[K, 3]`` of the complex's pocket table,
    needed by (and only by) rule ``"listed"``."""
    if rule == "listed":
        if listed is None:
            raise ValueError("pocket rule 'listed' needs the complex's pocket table (ATOM3D items have one)")
        return _nearest_ligand_distance(s.coords[s.ca_index[np.asarray(residues, dtype=np.int64)]],
                                        listed) <= LISTED_TOLERANCE
    return residue_ligand_distance(s, residues, ligand_coords, rule) <= cutoff
