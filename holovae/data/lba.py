"""Protein–ligand complexes -> pocket-residue neighbourhoods -> Zernike coefficients (ATOM3D LBA).

The ligand-binding-affinity task of the paper (ATOM3D LBA, built from the PDBbind refined set):

* **pocket residues**: standard amino acids with N, Cα and C (the centres of
  :func:`~holovae.data.neighbourhoods.centre_residues`) whose Cα lies within ``pocket_cutoff``
  (10 Å, inclusive) of any ligand heavy atom -- the paper's rule; ATOM3D's 6 Å pocket, which
  the authors' released code uses, is ``pocket_rule="any_atom"`` or, for ATOM3D items, their
  own pocket table (``"listed"``; :mod:`holovae.data.lba_pockets`);
* **neighbourhood** of a pocket residue: every heavy atom of the complex (protein, its hetero
  groups such as ions and cofactors, and the ligand; no waters, no hydrogens) within ``r_max``
  of its Cα, centred there, the central Cα dropped -- exactly the protein neighbourhoods of
  :func:`~holovae.data.neighbourhoods.neighbourhoods`, computed on the protein with the ligand
  added as one more hetero residue;
* the same Zernike transform as the protein-neighbourhood data, so that a model trained on
  those can embed these (:func:`transform_mismatches` says whether the parameters agree).

The receptor is the **full protein file** (``<id>_protein.pdb[.gz]``) by default: PDBbind's
``<id>_pocket.pdb`` keeps only residues near the ligand, so the 10 Å neighbourhood of a residue
at the pocket's rim would miss the protein atoms beyond the cut. ``receptor="protein_or_pocket"``
falls back to the pocket file where there is no full protein (recorded per complex).

Ligands are read from SDF (V2000/V3000) or MOL2 atom blocks by the small parsers below (elements
and coordinates are all we need, and unlike RDKit they do not reject a file whose bonds or
aromaticity do not sanitise; ``tests/test_lba_data.py`` checks that they agree with RDKit on every
shared file). Element symbols are matched whole: ``Cl`` is chlorine, never carbon.

A complex that cannot be used is skipped with its reason (no affinity in the index, no protein
file, unreadable protein or ligand, no pocket residue); the others go on. Complexes come from
PDBbind-style folders (:func:`find_complexes`), from memory (:class:`LoadedComplex`) or from an
ATOM3D LMDB dataset (:class:`Atom3DLMDB`, e.g. ATOM3D's own LBA files).
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .featurize import AMINO_ACIDS, transform_attrs
from .lba_pockets import pocket_description, pocket_mask, residue_ligand_distance
from .neighbourhoods import DEFAULT_ELEMENTS, Clouds, centre_residues, neighbourhoods, residue_ids
from .structures import ELEMENTS, Structure, StructureError, _read_text, parse_structure

__all__ = ["KIND", "ComplexError", "LigandError", "Ligand", "ComplexFiles", "LoadedComplex", "LBAFeaturized",
           "read_pdbbind_index", "find_complexes", "read_sdf", "read_mol2", "read_ligand",
           "add_ligand", "pocket_residues", "complex_neighbourhoods", "featurize_complexes",
           "transform_mismatches", "write_lba_dataset", "read_lba_dataset", "write_skipped",
           "Atom3DLMDB", "Atom3DComplex", "atom3d_structure", "atom3d_ligand", "atom3d_pocket_cas", "atom3d_score",
           "ATOM3D_RECEPTORS"]

log = logging.getLogger("holovae")

KIND = "lba_pocket_neighbourhoods"
LIGAND_RESNAME = "LIG"
# The transform parameters that must agree between a model's training data and data it embeds.
TRANSFORM_KEYS = ("lmax", "n_max", "r_max", "elements", "other_channel", "n_channels", "normalization",
                  "radial", "centre", "central_ca_dropped")
NEIGHBOURHOOD_KINDS = ("protein_neighbourhoods", KIND)
_HYDROGENS = frozenset({"H", "D", "T"})


class ComplexError(ValueError):
    """A complex cannot be used; the message is the reason (it names the file where there is one)."""


class LigandError(ComplexError):
    """A ligand file cannot be read; the message names the file (and line) and the reason."""


# ------------------------------------------------------------------------------------------------
# affinity tables
# ------------------------------------------------------------------------------------------------
_ID_COLUMNS = ("pdb_id", "pdbid", "pdb", "pdb_code", "code", "id")
# "neglog_aff" before "affinity": PDBbind-derived tables use "affinity" for the raw "Kd=10mM" text.
_VALUE_COLUMNS = ("neglog_aff", "-logkd/ki", "pk", "-logk", "logka", "label", "affinity")


def _add_entry(table: dict, lines: dict, pdb: str, value: float, where: str) -> None:
    """Insert one ``pdb -> value`` entry; a repeated id must repeat its value."""
    pdb = pdb.strip().lower()
    if not pdb or any(c.isspace() for c in pdb):
        raise ValueError(f"{where}: invalid PDB id {pdb!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: affinity of {pdb} is not finite ({value})")
    if pdb in table and table[pdb] != value:
        raise ValueError(f"{where}: {pdb} has affinity {value}, but {table[pdb]} at {lines[pdb]}")
    table[pdb], lines[pdb] = value, where


def _read_csv_index(path: Path, text: str, id_column: Optional[str], value_column: Optional[str]) -> dict:
    rows = csv.reader(line for line in text.splitlines() if not line.startswith("#"))
    header = next(rows, None)
    if not header:
        raise ValueError(f"{path}: empty affinity table")
    lower = [h.strip().lower() for h in header]

    def column(wanted, candidates, what):
        for name in ([wanted] if wanted else candidates):
            if name.lower() in lower:
                return lower.index(name.lower())
        raise ValueError(f"{path}: no {what} column (looked for {', '.join([wanted] if wanted else candidates)}; "
                         f"header is {', '.join(header)})")

    i_id = column(id_column, _ID_COLUMNS, "PDB id")
    i_val = column(value_column, _VALUE_COLUMNS, "affinity")
    table, where = {}, {}
    for lineno, row in enumerate(rows, start=2):
        if not row:
            continue
        loc = f"{path}:{lineno}"
        try:
            value = float(row[i_val])
        except (IndexError, ValueError):
            raise ValueError(f"{loc}: expected a number in column {header[i_val]!r}, got row {row!r}") from None
        _add_entry(table, where, row[i_id] if i_id < len(row) else "", value, loc)
    return table


def read_pdbbind_index(path, id_column: Optional[str] = None, value_column: Optional[str] = None) -> dict:
    """Affinities ``{pdb id (lower case): pK}`` from a PDBbind INDEX file or a CSV table.

    INDEX files (``INDEX_refined_data.2019``, ``INDEX_general_PL_data.*``, CASF ``CoreSet.dat``):
    ``#`` comment lines, then ``code resolution year -logKd/Ki Kd/Ki // reference (ligand)``;
    the fourth column is the label. CSV (recognised by its ``.csv`` suffix or a comma in the
    header): the id column is the first of ``pdb_id, pdbid, pdb, pdb_code, code, id`` present,
    the label column the first of ``neglog_aff, -logKd/Ki, pK, -logK, logKa, label, affinity``
    (case-insensitive), unless ``id_column`` / ``value_column`` name them. Raises
    ``ValueError`` naming the file and line for a malformed line, a non-numeric label, or one id
    given two different labels.
    """
    path = Path(path)
    text = _read_text(path)
    first = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    if path.name.lower().removesuffix(".gz").endswith(".csv") or "," in first:
        return _read_csv_index(path, text, id_column, value_column)
    table, where = {}, {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        try:
            value = float(fields[3])
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{lineno}: expected 'code resolution year -logKd/Ki Kd/Ki // reference "
                             f"(ligand)', got {line.strip()!r}") from None
        _add_entry(table, where, fields[0], value, f"{path}:{lineno}")
    if not table:
        raise ValueError(f"{path}: no affinity entries")
    return table


# ------------------------------------------------------------------------------------------------
# ligands
# ------------------------------------------------------------------------------------------------
@dataclass
class Ligand:
    """Heavy atoms of one ligand: ``element [A]`` str (upper case, ``"CL"``), ``coords [A, 3]``
    float32 (Å), ``atom_name [A]`` str, and ``source`` (the file read)."""

    element: np.ndarray
    coords: np.ndarray
    atom_name: np.ndarray
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return int(self.coords.shape[0])


def _element(symbol: str, where: str) -> Optional[str]:
    """Upper-case element of a file's symbol; ``None`` for hydrogens (dropped)."""
    el = symbol.strip().upper()
    if el in _HYDROGENS:
        return None
    if el not in ELEMENTS:
        raise LigandError(f"{where}: {symbol.strip()!r} is not an element symbol")
    return el


def _ligand(source, atoms: list) -> Ligand:
    """``atoms [(element or None, name, x, y, z)]`` -> :class:`Ligand` of the heavy atoms."""
    heavy = [a for a in atoms if a[0] is not None]
    if not heavy:
        raise LigandError(f"{source}: no heavy atoms")
    return Ligand(element=np.asarray([a[0] for a in heavy], dtype=str),
                  coords=np.asarray([a[2:] for a in heavy], dtype=np.float32).reshape(-1, 3),
                  atom_name=np.asarray([a[1] for a in heavy], dtype=str), source=str(source))


def _sdf_v3000_atoms(path, lines: list, start: int) -> list:
    """Atom block of a V3000 record (``M  V30 index type x y z aamap ...``; lines ending in
    ``-`` continue on the next one)."""
    joined, i = [], start
    while i < len(lines):
        line = lines[i].rstrip()
        while line.endswith("-") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + lines[i].rstrip()[7:]      # continuation lines repeat "M  V30 "
        joined.append((i + 1, line))
        i += 1
    try:
        begin = next(k for k, (_, l) in enumerate(joined) if l.startswith("M  V30 BEGIN ATOM"))
    except StopIteration:
        raise LigandError(f"{path}: V3000 record without 'M  V30 BEGIN ATOM'") from None
    atoms = []
    for lineno, line in joined[begin + 1:]:
        if line.startswith("M  V30 END ATOM"):
            return atoms
        f = line.split()
        where = f"{path}:{lineno}"
        try:
            x, y, z = float(f[4]), float(f[5]), float(f[6])
        except (IndexError, ValueError):
            raise LigandError(f"{where}: malformed V3000 atom line {line.strip()!r}") from None
        atoms.append((_element(f[3], where), f"{f[3]}{f[2]}", x, y, z))
    raise LigandError(f"{path}: V3000 atom block without 'M  V30 END ATOM' (truncated file?)")


def _ligand_lines(path: Path) -> list[str]:
    """The lines of a ligand file (plain or gzipped); :class:`LigandError` naming it if unreadable."""
    try:
        return _read_text(path).splitlines()
    except (OSError, EOFError) as e:
        raise LigandError(f"{path}: cannot read ({type(e).__name__}: {e})") from None


def read_sdf(path) -> Ligand:
    """Heavy atoms of the first record of an SDF / MOL file (V2000 or V3000, plain or gzipped).

    V2000 atom lines are read by the CTfile's fixed columns (x, y, z in columns 1-30, symbol in
    32-34): counts such as ``100104`` (100 atoms, 104 bonds) and coordinates have no separating
    space. Atom names are symbol + 1-based index (``C1``, ``CL12``). Raises :class:`LigandError`
    naming the file (and line) for a truncated or malformed record or an unknown symbol.
    """
    path = Path(path)
    lines = _ligand_lines(path)
    if "$$$$" in (line.strip() for line in lines):
        lines = lines[:[line.strip() for line in lines].index("$$$$")]
    if len(lines) < 4:
        raise LigandError(f"{path}: not an SDF/MOL record (fewer than 4 lines)")
    if not any(line.startswith("M  END") for line in lines):
        raise LigandError(f"{path}: no 'M  END' line (truncated file?)")
    counts = lines[3]
    if "V3000" in counts:
        return _ligand(path, _sdf_v3000_atoms(path, lines, 4))
    try:
        n_atoms = int(counts[0:3])
    except ValueError:
        raise LigandError(f"{path}:4: malformed counts line {counts!r}") from None
    block = lines[4:4 + n_atoms]
    if len(block) < n_atoms:
        raise LigandError(f"{path}: counts line declares {n_atoms} atoms, the file has {len(block)} more lines")
    atoms = []
    for k, line in enumerate(block):
        where = f"{path}:{5 + k}"
        try:
            x, y, z = float(line[0:10]), float(line[10:20]), float(line[20:30])
        except ValueError:
            raise LigandError(f"{where}: malformed atom line {line!r}") from None
        symbol = line[31:34]
        atoms.append((_element(symbol, where), f"{symbol.strip().upper()}{k + 1}", x, y, z))
    return _ligand(path, atoms)


def read_mol2(path) -> Ligand:
    """Heavy atoms of the first molecule of a Tripos MOL2 file (plain or gzipped).

    Atom lines ``id name x y z type [subst_id subst_name charge]``; the element is the SYBYL
    type's part before the dot (``C.ar`` -> C, ``Cl`` -> CL). Lone pairs (``LP``) are dropped
    with the hydrogens; dummy and generic types (``Du``, ``Any``, ``Hal``, ``Het``, ``Hev``)
    name no element and raise :class:`LigandError`, as do a malformed or short atom section
    (fewer atoms than the MOLECULE record declares).
    """
    path = Path(path)
    lines = _ligand_lines(path)
    tags = [k for k, line in enumerate(lines) if line.startswith("@<TRIPOS>")]
    molecule = next((k for k in tags if lines[k].strip() == "@<TRIPOS>MOLECULE"), None)
    if molecule is None:
        raise LigandError(f"{path}: no @<TRIPOS>MOLECULE record")
    try:
        n_atoms = int(lines[molecule + 2].split()[0])
    except (IndexError, ValueError):
        raise LigandError(f"{path}:{molecule + 3}: malformed MOLECULE counts line") from None
    start = next((k for k in tags if k > molecule and lines[k].strip() == "@<TRIPOS>ATOM"), None)
    if start is None:
        raise LigandError(f"{path}: no @<TRIPOS>ATOM section")
    stop = next((k for k in tags if k > start), len(lines))
    atoms = []
    for k in range(start + 1, stop):
        line = lines[k]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f, where = line.split(), f"{path}:{k + 1}"
        try:
            x, y, z = float(f[2]), float(f[3]), float(f[4])
            sybyl = f[5]
        except (IndexError, ValueError):
            raise LigandError(f"{where}: malformed atom line {line.strip()!r}") from None
        symbol = sybyl.split(".")[0]
        el = None if symbol.upper() == "LP" else _element(symbol, where + f" (SYBYL type {sybyl})")
        atoms.append((el, f[1], x, y, z))
    if len(atoms) != n_atoms:
        raise LigandError(f"{path}: MOLECULE record declares {n_atoms} atoms, the ATOM section has {len(atoms)}")
    return _ligand(path, atoms)


def _ligand_reader(path: Path):
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".sdf", ".sd", ".mol")):
        return read_sdf
    if name.endswith(".mol2"):
        return read_mol2
    raise LigandError(f"{path}: unknown ligand format (expected .sdf, .sd, .mol or .mol2)")


def read_ligand(paths) -> Ligand:
    """The first of ``paths`` (in order; :func:`find_complexes` lists SDF before MOL2) that
    reads. Raises :class:`LigandError` with every file's reason when none does."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise LigandError("no ligand file")
    reasons = []
    for path in paths:
        try:
            return _ligand_reader(path)(path)
        except LigandError as e:
            reasons.append(str(e))
    raise LigandError("; ".join(reasons))


# ------------------------------------------------------------------------------------------------
# complexes on disk
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# pockets and neighbourhoods
# ------------------------------------------------------------------------------------------------
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
    ligand atom; ``rule`` and ``listed`` as :func:`~holovae.data.lba_pockets.pocket_mask`."""
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


# ------------------------------------------------------------------------------------------------
# featurisation
# ------------------------------------------------------------------------------------------------
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

    from ..transforms.zernike import zernike_transform

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
    :func:`~holovae.data.lba_pockets.pocket_mask` (rule ``"listed"`` reads each complex's
    ``listed_pocket`` after ``load()``). The transform runs once per ``chunk`` neighbourhoods
    drawn from several complexes. A complex that fails is skipped with its reason, never ends
    the run.
    """
    from tqdm import tqdm

    from ..download import sha256_file
    from ..transforms.zernike import zernike_irreps

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


def transform_mismatches(data_attrs: Mapping, model_attrs: Mapping) -> list:
    """The transform parameters (:data:`TRANSFORM_KEYS`, and the kind of cloud) on which two
    datasets' attributes disagree, as ``"key: data=..., model=..."`` strings; empty when a model
    trained on one can embed the other (e.g. protein neighbourhoods -> LBA pockets)."""
    out = [f"{k}: data={data_attrs.get(k)!r}, model={model_attrs.get(k)!r}"
           for k in TRANSFORM_KEYS if data_attrs.get(k) != model_attrs.get(k)]
    # protein and pocket neighbourhoods are the same kind of cloud; a residue's own atoms are not
    clouds = lambda kind: "neighbourhood" if kind in NEIGHBOURHOOD_KINDS else kind  # noqa: E731
    if clouds(data_attrs.get("kind")) != clouds(model_attrs.get("kind")):
        out.insert(0, f"kind: data={data_attrs.get('kind')!r}, model={model_attrs.get('kind')!r}")
    return out


# ------------------------------------------------------------------------------------------------
# ATOM3D LMDB datasets
# ------------------------------------------------------------------------------------------------
_ATOM3D_COLUMNS = ("chain", "hetero", "insertion_code", "residue", "resname", "x", "y", "z", "element", "name")


def _atom3d_columns(table, where: str) -> dict:
    """An ATOM3D atom table (a pandas DataFrame serialised ``orient="split"``: ``{"columns",
    "index", "data"}``) -> ``{column: list of values}``."""
    try:
        columns, rows = table["columns"], table["data"]
    except (TypeError, KeyError):
        raise ComplexError(f"{where}: not an ATOM3D atom table (expected a dict with 'columns' and 'data')") from None
    missing = [c for c in _ATOM3D_COLUMNS if c not in columns]
    if missing:
        raise ComplexError(f"{where}: atom table lacks column(s) {', '.join(missing)}")
    if not rows:
        raise ComplexError(f"{where}: empty atom table")
    return {c: [r[i] for r in rows] for i, c in enumerate(columns)}


def _atom3d_elements(t: dict) -> np.ndarray:
    """Upper-case elements; a value that is no element symbol is guessed from the atom name."""
    from .structures import element_from_name

    fullnames = t.get("fullname", t["name"])
    out = []
    for el, name, full, res in zip(t["element"], t["name"], fullnames, t["resname"]):
        el = str(el or "").strip().upper()
        if el not in ELEMENTS:
            full = str(full or name)
            el = element_from_name(full, str(res), aligned=len(full) == 4)
        out.append(el)
    return np.asarray(out, dtype=str)


def atom3d_structure(table, name: str = "", keep_hetero: bool = True, where: str = "") -> Structure:
    """A :class:`~holovae.data.structures.Structure` from an ATOM3D atom table (columns of
    biopython's records: ``model, chain, hetero, residue, insertion_code, resname, name,
    fullname, element, x, y, z``), filtered like :func:`~holovae.data.structures.parse_structure`:
    first model, no waters (``hetero == "W"`` or a water name), no hydrogens; consecutive rows
    with the same (chain, hetero, residue, insertion code, resname) are one residue."""
    from .structures import WATER_NAMES, _tight

    where = where or name
    t = _atom3d_columns(table, where)
    n = len(t["x"])
    keep = np.ones(n, dtype=bool)
    if "model" in t:
        keep &= np.asarray([m == t["model"][0] for m in t["model"]])
    hetero = [str(h or "").strip() for h in t["hetero"]]
    resname = [str(r).strip().upper() for r in t["resname"]]
    keep &= np.asarray([h != "W" and r not in WATER_NAMES and (keep_hetero or not h)
                        for h, r in zip(hetero, resname)])
    element = _atom3d_elements(t)
    keep &= ~np.isin(element, list(_HYDROGENS))
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ComplexError(f"{where}: no heavy atoms after removing waters/hydrogens")
    keys = [(str(t["chain"][i]), hetero[i], int(t["residue"][i]), str(t["insertion_code"][i] or "").strip(),
             resname[i]) for i in idx.tolist()]
    starts = [0] + [k for k in range(1, len(keys)) if keys[k] != keys[k - 1]]
    residue_index = np.zeros(len(keys), dtype=np.int32)
    residue_index[starts[1:]] = 1
    residue_index = np.cumsum(residue_index).astype(np.int32)
    res = [keys[k] for k in starts]
    element, atom_name = _tight(element[idx]), _tight(np.asarray([str(t["name"][i]).strip() for i in idx], dtype=str))
    is_ca = (atom_name == "CA") & (element == "C")
    ca_index = np.full(len(res), -1, dtype=np.int64)
    np.maximum.at(ca_index, residue_index[is_ca], np.flatnonzero(is_ca))
    if not (ca_index >= 0).any():
        raise ComplexError(f"{where}: no Cα atom (not a protein?)")
    return Structure(
        name=name, coords=np.stack([np.asarray(t[c], dtype=np.float64)[idx] for c in "xyz"], 1).astype(np.float32),
        element=element, atom_name=atom_name, residue_index=residue_index,
        chain=np.asarray([r[0] for r in res], dtype=str), resnum=np.asarray([r[2] for r in res], dtype=np.int32),
        icode=np.asarray([r[3] for r in res], dtype=str), resname=np.asarray([r[4] for r in res], dtype=str),
        is_hetero=np.asarray([r[1] != "" for r in res], dtype=bool), ca_index=ca_index)


def atom3d_pocket_cas(table, where: str = "") -> np.ndarray:
    """Coordinates ``[K, 3]`` float64 of the Cα rows (atom name ``CA``, element carbon: ``CA``
    alone can be calcium) of an ATOM3D pocket table: where the authors' code centres its
    neighbourhoods."""
    t = _atom3d_columns(table, where)
    element = _atom3d_elements(t)
    rows = [k for k, (name, el) in enumerate(zip(t["name"], element)) if str(name).strip() == "CA" and el == "C"]
    return np.array([[float(t[c][k]) for c in "xyz"] for k in rows], dtype=np.float64).reshape(-1, 3)


def atom3d_ligand(table, where: str = "") -> Ligand:
    """The heavy atoms of an ATOM3D ligand table (RDKit's atoms: mixed-case symbols such as
    ``"Cl"``, hydrogens added by ATOM3D) as a :class:`Ligand`."""
    t = _atom3d_columns(table, where)
    atoms = [(_element(str(el), f"{where} row {k}"), str(name).strip(), float(x), float(y), float(z))
             for k, (el, name, x, y, z) in enumerate(zip(t["element"], t["name"], t["x"], t["y"], t["z"]))]
    return _ligand(where, atoms)


class Atom3DLMDB:
    """A read-only ATOM3D LMDB dataset (``pip install lmdb``): keys ``0..n-1`` hold
    gzip-compressed JSON items whose DataFrames are ``{"columns", "index", "data"}`` dicts (no
    pandas needed); ``num_examples``, ``serialization_format`` and ``id_to_idx`` describe them.

    ``len(db)``, ``db[i]`` (the decoded item), ``db.ids`` (item ids by index),
    :meth:`complexes` (LBA items as inputs of :func:`featurize_complexes`) and :meth:`affinities`.
    """

    def __init__(self, path):
        import lmdb

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such LMDB")
        if self.path.is_dir() and not (self.path / "data.mdb").is_file():
            inner = sorted(d.name for d in self.path.iterdir() if (d / "data.mdb").is_file())
            hint = (f"; it holds the LMDB dataset(s) {', '.join(inner)}: give those (e.g. {self.path / inner[0]})"
                    if inner else "")
            raise ValueError(f"{self.path}: not an LMDB dataset (a folder with data.mdb){hint}")
        try:
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False,
                                  subdir=self.path.is_dir())
            with self._env.begin(write=False) as txn:
                n, fmt, ids = txn.get(b"num_examples"), txn.get(b"serialization_format"), txn.get(b"id_to_idx")
        except lmdb.Error as e:
            raise ValueError(f"{self.path}: not an LMDB database ({type(e).__name__}: {e})") from None
        if n is None:
            raise ValueError(f"{self.path}: not an ATOM3D LMDB dataset (no 'num_examples' key)")
        self._n = int(n)
        self.serialization_format = fmt.decode() if fmt else "json"
        if self.serialization_format != "json":
            raise ValueError(f"{self.path}: serialization format {self.serialization_format!r} is not supported "
                             "(only 'json'; pickled items would need pandas and trust in the file)")
        by_index = {int(i): k for k, i in json.loads(ids).items()} if ids else {}
        self.ids = [by_index.get(i, str(i)) for i in range(self._n)]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self._n:
            raise IndexError(f"{self.path}: index {index} out of range [0, {self._n})")
        with self._env.begin(write=False) as txn:
            raw = txn.get(str(index).encode())
        if raw is None:
            raise KeyError(f"{self.path}: no item {index}")
        return json.loads(gzip.decompress(raw))

    def complexes(self, protein_key: str = "atoms_protein", ligand_key: str = "atoms_ligand",
                  receptor: Optional[str] = None) -> list:
        """One lazy :class:`Atom3DComplex` per item (decoded by ``load()``). ATOM3D LBA items
        hold ``atoms_protein`` (the protein), ``atoms_pocket`` (PDBbind's pocket) and
        ``atoms_ligand``. ``receptor`` (one of :data:`ATOM3D_RECEPTORS`), when given, chooses the
        receptor table per item instead of ``protein_key``."""
        from .structures import structure_id

        return [Atom3DComplex(structure_id(pid).lower(), self, i, protein_key, ligand_key, receptor=receptor)
                for i, pid in enumerate(self.ids)]

    def affinities(self, score_key: str = "neglog_aff") -> dict:
        """``{pdb id: score}`` of the items that have ``scores[score_key]`` (decodes every item;
        :func:`atom3d_score`)."""
        out = {}
        for c in self.complexes():
            value = atom3d_score(self[c.index], score_key)
            if value is not None:
                out[c.pdb_id] = value
        return out


# Receptor choices for ATOM3D items: the tables tried, in order. "larger" takes the one with more
# atom rows: some LBA releases were reported to hold only the pocket region in atoms_protein, and
# a neighbourhood of a residue at the rim of a cut-out pocket misses the protein atoms beyond it.
ATOM3D_RECEPTORS = {"protein": ("atoms_protein",), "pocket": ("atoms_pocket",),
                    "protein_or_pocket": ("atoms_protein", "atoms_pocket"),
                    "larger": ("atoms_protein", "atoms_pocket")}


def _atom3d_rows(table) -> int:
    rows = table.get("data") if isinstance(table, dict) else None
    return len(rows) if isinstance(rows, list) else 0


def atom3d_score(item: Mapping, score_key: str = "neglog_aff") -> Optional[float]:
    """``item["scores"][score_key]`` as a float, ``None`` when absent. ``scores`` is a dict
    (``{"neglog_aff": 6.4}``, ATOM3D's current ``prepare_lmdb.py``) or a pandas Series serialised
    ``orient="split"`` (``{"name", "index": ["neglog_aff"], "data": [6.4]}``, its earlier one)."""
    scores = item.get("scores")
    if not isinstance(scores, dict):
        return None
    if isinstance(scores.get("index"), list) and isinstance(scores.get("data"), list) and score_key not in scores:
        scores = dict(zip(scores["index"], scores["data"]))
    value = scores.get(score_key)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class Atom3DComplex:
    """Item ``index`` of an :class:`Atom3DLMDB` as a complex (input of :func:`featurize_complexes`).

    The receptor is the ``protein_key`` table, or, with ``receptor`` (:data:`ATOM3D_RECEPTORS`),
    the first non-empty table of that choice ("larger": the one with more atom rows, ties to
    ``atoms_protein``); ``receptor_kind`` says which ("protein" / "pocket") once loaded."""

    pdb_id: str
    dataset: Atom3DLMDB
    index: int
    protein_key: str = "atoms_protein"
    ligand_key: str = "atoms_ligand"
    receptor: Optional[str] = None
    chosen_key: Optional[str] = field(default=None, repr=False)
    # Cα coordinates [K, 3] of the item's atoms_pocket, set by load(): ATOM3D's pocket, pocket
    # rule "listed" (None: the item has no pocket table)
    listed_pocket: Optional[np.ndarray] = field(default=None, repr=False)

    def __post_init__(self):
        if self.receptor is not None and self.receptor not in ATOM3D_RECEPTORS:
            raise ValueError(f"receptor must be one of {tuple(ATOM3D_RECEPTORS)}, got {self.receptor!r}")

    @property
    def receptor_kind(self) -> str:
        return "pocket" if (self.chosen_key or self.protein_key) == "atoms_pocket" else "protein"

    def _receptor_key(self, item: Mapping, where: str) -> str:
        keys = (self.protein_key,) if self.receptor is None else ATOM3D_RECEPTORS[self.receptor]
        present = [k for k in keys if _atom3d_rows(item.get(k)) > 0]
        if not present:
            tables = " or ".join(repr(k) for k in keys)
            raise ComplexError(f"{where} ({self.pdb_id}): no {tables} table (item keys: {', '.join(item)})")
        if self.receptor == "larger":
            return max(present, key=lambda k: _atom3d_rows(item[k]))        # max keeps the first of ties
        return present[0]

    def load(self, keep_hetero: bool = True) -> tuple:
        """``(Structure, Ligand)``; raises :class:`ComplexError` with the reason."""
        where = f"{self.dataset.path}[{self.index}]"
        item = self.dataset[self.index]
        protein_key = self._receptor_key(item, where)
        if self.ligand_key not in item:
            raise ComplexError(f"{where} ({self.pdb_id}): no {self.ligand_key!r} table (item keys: {', '.join(item)})")
        try:
            ligand = atom3d_ligand(item[self.ligand_key], where=f"{where}:{self.ligand_key}")
        except ComplexError as e:
            raise LigandError(f"ligand does not parse: {e}") from None
        try:
            s = atom3d_structure(item[protein_key], name=self.pdb_id, keep_hetero=keep_hetero,
                                 where=f"{where}:{protein_key}")
        except ComplexError as e:
            raise ComplexError(f"protein does not parse: {e}") from None
        self.chosen_key = protein_key
        pocket = item.get("atoms_pocket")
        self.listed_pocket = atom3d_pocket_cas(pocket, f"{where}:atoms_pocket") if _atom3d_rows(pocket) else None
        return s, ligand


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------
_GROUP = "complexes"
_PER_COMPLEX = ("complex_ids", "affinity", "n_pocket", "receptor", "ligand_file")


def write_lba_dataset(path, f: LBAFeaturized) -> Path:
    """Write ``f`` to one HDF5 file, atomically (temporary file, then ``os.replace``).

    Rows via :func:`holovae.data.hdf5.write_dataset` (``coefficients``, ``labels`` = residue
    type, ``ids``, extra ``complex_index``; attrs incl. ``skipped``), so every steerable-dataset
    reader opens it; the per-complex arrays go in the group ``complexes/``.
    """
    import h5py

    from ..atomic import atomic_path
    from .hdf5 import write_dataset

    path = Path(path)
    with atomic_path(path, suffix=".lba.tmp") as tmp:
        write_dataset(tmp, f.coefficients, f.irreps, labels=f.residue_labels, ids=f.ids,
                      attrs={**f.attrs, "skipped": [[str(a), str(b)] for a, b in f.skipped]},
                      extra={"complex_index": f.complex_index})
        with h5py.File(tmp, "a") as h:
            g = h.create_group(_GROUP)
            for name in _PER_COMPLEX:
                arr = np.asarray(getattr(f, name))
                if arr.dtype.kind == "U":
                    g.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype())
                else:
                    g.create_dataset(name, data=arr)
    return path


def read_lba_dataset(path) -> LBAFeaturized:
    """Read a file written by :func:`write_lba_dataset`. Raises
    :class:`~holovae.data.hdf5.DatasetFormatError` naming the file when it is not one (no
    ``complexes`` group, inconsistent per-complex arrays)."""
    import h5py

    from .hdf5 import DatasetFormatError, read_dataset

    path = Path(path)
    d = read_dataset(path)
    if d.attrs.get("kind") != KIND or "complex_index" not in d.extra:
        raise DatasetFormatError(f"{path}: not an LBA pocket dataset (kind={d.attrs.get('kind')!r})")
    with h5py.File(path, "r") as h:
        if _GROUP not in h or any(name not in h[_GROUP] for name in _PER_COMPLEX):
            raise DatasetFormatError(f"{path}: missing group {_GROUP!r} or one of its datasets {_PER_COMPLEX}")
        g = h[_GROUP]
        per = {name: (np.asarray(g[name].asstr()[()], dtype=str) if g[name].dtype.kind in ("O", "S") else g[name][()])
               for name in _PER_COMPLEX}
    m = len(per["complex_ids"])
    index = d.extra.pop("complex_index").astype(np.int64)
    in_range = bool(((index >= 0) & (index < m)).all())
    if any(len(v) != m for v in per.values()) or not in_range or \
            not np.array_equal(np.bincount(index, minlength=m), per["n_pocket"]):
        raise DatasetFormatError(f"{path}: per-complex arrays disagree with complex_index "
                                 f"({m} complexes, {len(index)} rows)")
    attrs = dict(d.attrs)
    skipped = [tuple(row) for row in attrs.pop("skipped", [])]
    return LBAFeaturized(coefficients=d.coefficients.numpy(), irreps=d.irreps, complex_index=index,
                         ids=[] if d.ids is None else d.ids.tolist(),
                         residue_labels=np.zeros(len(d), np.int64) if d.labels is None else d.labels,
                         skipped=skipped, attrs=attrs, **per)


def write_skipped(path, skipped) -> Path:
    """``complex, reason`` rows as TSV, written atomically (tabs/newlines in reasons escaped)."""
    from ..atomic import write_tsv_atomic

    return write_tsv_atomic(path, ("complex", "reason"), skipped)
