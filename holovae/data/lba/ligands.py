"""Ligand files (SDF V2000/V3000, MOL2; plain or gzipped) -> the ligand's heavy atoms.

Elements and coordinates are all featurisation needs, so small parsers read the atom blocks:
unlike RDKit they do not reject a file whose bonds or aromaticity do not sanitise
(``tests/test_lba_data.py`` checks that they agree with RDKit on every shared file). Element
symbols are matched whole: ``Cl`` is chlorine, never carbon.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..structures import ELEMENTS, read_text
from .errors import LigandError

__all__ = ["Ligand", "read_sdf", "read_mol2", "read_ligand", "heavy_element", "ligand_from_atoms", "HYDROGENS"]

HYDROGENS = frozenset({"H", "D", "T"})


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


def heavy_element(symbol: str, where: str) -> Optional[str]:
    """Upper-case element of a file's symbol; ``None`` for hydrogens (dropped)."""
    el = symbol.strip().upper()
    if el in HYDROGENS:
        return None
    if el not in ELEMENTS:
        raise LigandError(f"{where}: {symbol.strip()!r} is not an element symbol")
    return el


def ligand_from_atoms(source, atoms: list) -> Ligand:
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
        atoms.append((heavy_element(f[3], where), f"{f[3]}{f[2]}", x, y, z))
    raise LigandError(f"{path}: V3000 atom block without 'M  V30 END ATOM' (truncated file?)")


def _ligand_lines(path: Path) -> list[str]:
    """The lines of a ligand file (plain or gzipped); :class:`LigandError` naming it if unreadable."""
    try:
        return read_text(path).splitlines()
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
        return ligand_from_atoms(path, _sdf_v3000_atoms(path, lines, 4))
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
        atoms.append((heavy_element(symbol, where), f"{symbol.strip().upper()}{k + 1}", x, y, z))
    return ligand_from_atoms(path, atoms)


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
        el = None if symbol.upper() == "LP" else heavy_element(symbol, where + f" (SYBYL type {sybyl})")
        atoms.append((el, f[1], x, y, z))
    if len(atoms) != n_atoms:
        raise LigandError(f"{path}: MOLECULE record declares {n_atoms} atoms, the ATOM section has {len(atoms)}")
    return ligand_from_atoms(path, atoms)


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
