"""ATOM3D LMDB datasets (e.g. ATOM3D's own LBA files): items -> complexes and affinities.

An item's atom tables (pandas DataFrames serialised ``orient="split"``) are read without pandas:
the receptor (``atoms_protein`` or ``atoms_pocket``, :data:`ATOM3D_RECEPTORS`) as a
:class:`~holovae.data.structures.Structure`, ``atoms_ligand`` as a
:class:`~holovae.data.lba.ligands.Ligand`, and ``scores.neglog_aff`` as the affinity.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..structures import ELEMENTS, WATER_NAMES, Structure, element_from_name, structure_id, tight_strings
from .errors import ComplexError, LigandError
from .ligands import HYDROGENS, Ligand, heavy_element, ligand_from_atoms

__all__ = ["Atom3DLMDB", "Atom3DComplex", "ATOM3D_RECEPTORS", "atom3d_structure", "atom3d_ligand",
           "atom3d_pocket_cas", "atom3d_score"]

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
    keep &= ~np.isin(element, list(HYDROGENS))
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
    element = tight_strings(element[idx])
    atom_name = tight_strings(np.asarray([str(t["name"][i]).strip() for i in idx], dtype=str))
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
    atoms = [(heavy_element(str(el), f"{where} row {k}"), str(name).strip(), float(x), float(y), float(z))
             for k, (el, name, x, y, z) in enumerate(zip(t["element"], t["name"], t["x"], t["y"], t["z"]))]
    return ligand_from_atoms(where, atoms)


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
