"""Affinity tables (PDBbind INDEX files, CSV tables) and lists of complex ids."""
from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Optional

from ..structures import read_text

__all__ = ["read_pdbbind_index", "find_affinity_tables", "read_affinities", "read_id_list"]

log = logging.getLogger("holovae")

# File names under which PDBbind and its derivatives ship affinity tables.
_TABLE_PATTERNS = ("INDEX_*", "*CoreSet.dat", "*.csv", "*.csv.gz")

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
    text = read_text(path)
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


def find_affinity_tables(directory) -> list[Path]:
    """Affinity tables shipped with a complexes folder: files named ``INDEX_*``,
    ``*CoreSet.dat`` or ``*.csv`` directly in ``directory`` or in its ``index/`` subfolder (the
    layout of PDBbind's downloads), sorted."""
    directory = Path(directory)
    found = set()
    for folder in (directory, directory / "index"):
        if folder.is_dir():
            found.update(p for pattern in _TABLE_PATTERNS for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def read_affinities(index, complexes_dir) -> tuple[dict, list[str]]:
    """``({pdb id: pK}, [tables read])``: ``index`` when given; else every table that
    :func:`find_affinity_tables` finds and :func:`read_pdbbind_index` reads
    (a CSV without id/affinity columns is passed over), merged. One id with two different
    values in two tables is an error naming both."""
    if index is not None:
        if not Path(index).is_file():
            raise FileNotFoundError(f"{index}: no such affinity table")
        return read_pdbbind_index(index), [str(index)]
    merged, origin, used = {}, {}, []
    for path in find_affinity_tables(complexes_dir):
        try:
            table = read_pdbbind_index(path)
        except ValueError as exc:      # e.g. a CSV of something else next to the complexes
            log.info("not an affinity table, passed over: %s", exc)
            continue
        for pid, value in table.items():
            if pid in merged and merged[pid] != value:
                raise ValueError(f"{pid} has affinity {value} in {path} but {merged[pid]} in {origin[pid]}; "
                                 "choose one table with --index")
            merged[pid], origin[pid] = value, path
        used.append(str(path))
    if not used:
        raise ValueError(f"{complexes_dir}: no affinity table found (looked for {', '.join(_TABLE_PATTERNS)} "
                         "there and in its index/ folder); give one with --index")
    return merged, used


def read_id_list(path) -> list[str]:
    """Complex ids (lower case) of a text file, one per line; blank lines and ``#`` comments
    are ignored, repeats are kept once (first occurrence)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such id list")
    ids = [line.split("#", 1)[0].strip().lower() for line in path.read_text().splitlines()]
    ids = list(dict.fromkeys(i for i in ids if i))
    if not ids:
        raise ValueError(f"{path}: no complex ids")
    return ids
