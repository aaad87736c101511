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

A pocket residue's **neighbourhood**: every heavy atom of the complex (protein, its hetero groups
such as ions and cofactors, and the ligand; no waters, no hydrogens) within ``r_max`` of its Cα,
centred there, the central Cα dropped -- exactly the protein neighbourhoods of
:func:`~holovae.data.neighbourhoods.neighbourhoods`, computed on the protein with the ligand added
as one more hetero residue (:func:`complex_neighbourhoods`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from ..neighbourhoods import DEFAULT_ELEMENTS, Clouds, centre_residues, neighbourhoods
from ..structures import Structure
from .ligands import Ligand

__all__ = ["PROTOCOLS", "POCKET_RULES", "PROTOCOL_POCKET", "protocol_pocket", "pocket_protocol",
           "pocket_description", "pocket_mask", "residue_keys", "residue_ligand_distance", "data_pocket",
           "LIGAND_RESNAME", "add_ligand", "pocket_residues", "complex_neighbourhoods"]

LIGAND_RESNAME = "LIG"

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


def data_pocket(attrs) -> dict:
    """How a data file's pockets were cut (rule, cutoff, the protocol they match, in words), from
    the attributes ``holovae prepare-lba`` stored; data prepared before pocket rules existed used
    the Cα rule."""
    rule, cutoff = str(attrs.get("pocket_rule", "ca")), float(attrs.get("pocket_cutoff", 10.0))
    return {"rule": rule, "cutoff": cutoff, "protocol": pocket_protocol(rule, cutoff),
            "text": pocket_description(rule, cutoff)}


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


def add_ligand(s: Structure, ligand: Ligand, name: Optional[str] = None) -> Structure:
    """The structure with the ligand appended as one hetero residue (chain ``""``, resname
    ``LIG``, no Cα). Protein residue and atom indices are unchanged."""
    n_res = s.n_residues
    return Structure(
        name=s.name if name is None else name,
        coords=np.concatenate([s.coords, ligand.coords.astype(np.float32)]),
        element=np.concatenate([s.element, ligand.element]),
        atom_name=np.concatenate([s.atom_name, ligand.atom_name]),
        residue_index=np.concatenate([s.residue_index, np.full(ligand.n_atoms, n_res, s.residue_index.dtype)]),
        chain=np.append(s.chain, ""), resnum=np.append(s.resnum, np.int32(0)), icode=np.append(s.icode, ""),
        resname=np.append(s.resname, LIGAND_RESNAME), is_hetero=np.append(s.is_hetero, True),
        ca_index=np.append(s.ca_index, -1))


def pocket_residues(s: Structure, ligand_coords: np.ndarray, cutoff: float = 10.0, rule: str = "ca",
                    listed: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices ``[K]`` int64 (ascending) of the centre residues of ``s`` (standard amino acids
    with N, Cα, C; see :func:`~holovae.data.neighbourhoods.centre_residues`) in the pocket of
    ``ligand_coords [A, 3]``: by default those whose Cα lies within ``cutoff`` (inclusive) of a
    ligand atom; ``rule`` and ``listed`` as :func:`pocket_mask`."""
    residues, _ = centre_residues(s)
    return residues[pocket_mask(s, residues, ligand_coords, rule, cutoff, listed)]


def complex_neighbourhoods(s: Structure, ligand: Ligand, *, pocket_cutoff: float = 10.0, r_max: float = 10.0,
                           elements: Sequence[str] = DEFAULT_ELEMENTS, other_channel: bool = False,
                           pocket_rule: str = "ca", listed: Optional[np.ndarray] = None) -> Clouds:
    """Neighbourhoods of the pocket residues of a complex (see the module docstring).

    Returns :class:`~holovae.data.neighbourhoods.Clouds` over ``add_ligand(s, ligand)``, whose
    ``residue [K]`` are the :func:`pocket_residues` (``pocket_rule``, ``pocket_cutoff``,
    ``listed``; indices into ``s`` as well); ``skipped`` lists amino acids in the pocket that
    lack a backbone atom.
    """
    merged = add_ligand(s, ligand)
    # neighbourhoods() centres clouds on the non-hetero standard residues and takes every atom
    # within r_max as environment; flagging all other residues as hetero (in a copy) restricts
    # the centres to the pocket and leaves the environment -- protein, hetero groups and
    # ligand -- untouched, so these clouds are the protein neighbourhoods, computed only there.
    is_aa = ~s.is_hetero & (s.ca_index >= 0)
    near = np.zeros(merged.n_residues, dtype=bool)
    aa = np.flatnonzero(is_aa)
    near[aa[pocket_mask(s, aa, ligand.coords, pocket_rule, pocket_cutoff, listed)]] = True
    only_pocket = dataclasses.replace(merged, is_hetero=merged.is_hetero | ~near)
    return neighbourhoods(only_pocket, r_max=r_max, elements=elements, other_channel=other_channel)
