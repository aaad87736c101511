"""Complexes as featurisation takes them: PDBbind-style folders on disk (:func:`find_complexes`)
or structures already in memory (:class:`LoadedComplex`); ATOM3D items are
:class:`~holovae.data.lba.atom3d.Atom3DComplex`.

The receptor is the **full protein file** (``<id>_protein.pdb[.gz]``) by default: PDBbind's
``<id>_pocket.pdb`` keeps only residues near the ligand, so the 10 Å neighbourhood of a residue
at the pocket's rim would miss the protein atoms beyond the cut. ``receptor="protein_or_pocket"``
falls back to the pocket file where there is no full protein (recorded per complex).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..structures import Structure, StructureError, parse_structure
from .errors import ComplexError, LigandError
from .ligands import Ligand, read_ligand

__all__ = ["ComplexFiles", "LoadedComplex", "find_complexes"]

_RECEPTORS = ("protein", "protein_or_pocket", "pocket")


@dataclass
class ComplexFiles:
    """One PDBbind-style complex folder: ``pdb_id`` (lower case), ``directory``, the full
    ``protein`` and PDBbind ``pocket`` files (``None`` when absent), ``ligands`` (SDF files
    first, then MOL2) and ``receptor``: the file used as the protein (``None``: none allowed by
    the ``receptor`` choice of :func:`find_complexes`) with ``receptor_kind`` ("protein" /
    "pocket" / ""). ``sequences``: ``<id>_chains.fasta[.gz]`` when present, the full protein's
    chains for a folder that holds only a pocket
    (:func:`~holovae.data.sequence_split.read_chains_fasta`; used by ``holovae lba-split``)."""

    pdb_id: str
    directory: Path
    protein: Optional[Path]
    pocket: Optional[Path]
    ligands: tuple
    receptor: Optional[Path]
    receptor_kind: str
    sequences: Optional[Path] = None

    def files(self) -> list:
        """The files this complex is built from (receptor and ligands)."""
        return ([self.receptor] if self.receptor else []) + list(self.ligands)

    def load(self, keep_hetero: bool = True) -> tuple:
        """``(Structure, Ligand)``; raises :class:`ComplexError` with the reason."""
        if self.receptor is None:
            have = f" (only {self.pocket.name}; receptor='protein_or_pocket' would use it)" if self.pocket else ""
            raise ComplexError(f"no protein file in {self.directory}{have}")
        try:
            ligand = read_ligand(self.ligands)
        except LigandError as e:
            raise LigandError(f"ligand does not parse: {e}") from None
        try:
            structure = parse_structure(self.receptor, keep_hetero=keep_hetero)
        except (StructureError, OSError) as e:
            raise ComplexError(f"protein does not parse: {e}") from None
        return structure, ligand


@dataclass
class LoadedComplex:
    """A complex already in memory (``structure``, ``ligand``), for :func:`featurize_complexes`
    in place of files (rotated copies in tests, ATOM3D items, a user's own arrays)."""

    pdb_id: str
    structure: Structure
    ligand: Ligand
    receptor_kind: str = "protein"

    def load(self, keep_hetero: bool = True) -> tuple:
        """``(Structure, Ligand)``; ``keep_hetero=False`` drops the receptor's hetero residues."""
        return (self.structure if keep_hetero else _without_hetero(self.structure)), self.ligand


def _without_hetero(s: Structure) -> Structure:
    """``s`` without its hetero residues (atom and residue indices renumbered)."""
    keep_res = ~s.is_hetero
    keep = keep_res[s.residue_index]
    new_index = np.cumsum(keep_res) - 1                    # old residue index -> new
    new_atom = np.cumsum(keep) - 1                         # old atom index -> new
    ca = s.ca_index[keep_res]
    return Structure(name=s.name, coords=s.coords[keep], element=s.element[keep], atom_name=s.atom_name[keep],
                     residue_index=new_index[s.residue_index[keep]].astype(np.int32), chain=s.chain[keep_res],
                     resnum=s.resnum[keep_res], icode=s.icode[keep_res], resname=s.resname[keep_res],
                     is_hetero=s.is_hetero[keep_res], ca_index=np.where(ca >= 0, new_atom[ca], -1))


def _first_existing(directory: Path, names: Sequence[str]) -> Optional[Path]:
    return next((directory / n for n in names if (directory / n).is_file()), None)


def find_complexes(directory, receptor: str = "protein") -> list:
    """PDBbind-style complexes under ``directory`` (searched recursively), sorted by id.

    A complex is a folder ``<id>/`` holding ``<id>_ligand.sdf`` and/or ``<id>_ligand.mol2``
    (optionally ``.gz``), with ``<id>_protein.pdb[.gz]`` and/or ``<id>_pocket.pdb[.gz]``.
    ``receptor``: ``"protein"`` (the full protein only; see the module docstring for why),
    ``"protein_or_pocket"`` (fall back to the pocket file), or ``"pocket"``. A complex whose
    receptor file is missing is still listed (``receptor=None``) so that featurisation reports it.
    Raises ``ValueError`` when one id appears in two folders.
    """
    if receptor not in _RECEPTORS:
        raise ValueError(f"receptor must be one of {_RECEPTORS}, got {receptor!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    found: dict = {}
    for folder in sorted({p.parent for p in directory.rglob("*_ligand.*")}):
        pid = folder.name
        lig = [_first_existing(folder, [f"{pid}_ligand{ext}", f"{pid}_ligand{ext}.gz"]) for ext in (".sdf", ".mol2")]
        lig = tuple(p for p in lig if p is not None)
        if not lig:
            continue
        if pid.lower() in found:
            raise ValueError(f"complex {pid} found twice: {found[pid.lower()].directory} and {folder}")
        protein = _first_existing(folder, [f"{pid}_protein.pdb", f"{pid}_protein.pdb.gz"])
        pocket = _first_existing(folder, [f"{pid}_pocket.pdb", f"{pid}_pocket.pdb.gz"])
        use = {"protein": [("protein", protein)], "pocket": [("pocket", pocket)],
               "protein_or_pocket": [("protein", protein), ("pocket", pocket)]}[receptor]
        kind, path = next(((k, p) for k, p in use if p is not None), ("", None))
        found[pid.lower()] = ComplexFiles(pdb_id=pid.lower(), directory=folder, protein=protein, pocket=pocket,
                                          ligands=lig, receptor=path, receptor_kind=kind,
                                          sequences=_first_existing(folder, [f"{pid}_chains.fasta",
                                                                             f"{pid}_chains.fasta.gz"]))
    return [found[k] for k in sorted(found)]
