"""ATOM3D LMDB folders as the input of ``holovae prepare-lba --atom3d``: opening them, their
complexes and affinities, and the ids of ATOM3D's train/val/test split folders
(``--lists-out``, the input of ``holovae lba-split --lists``)."""
from __future__ import annotations

import logging
from pathlib import Path

from ...atomic import write_text_atomic
from ..structures import structure_id
from .atom3d import Atom3DLMDB, atom3d_score
from .indexes import read_affinities

__all__ = ["LIST_NAMES", "open_atom3d", "check_lists_out", "atom3d_complexes", "atom3d_affinities",
           "split_id_lists", "write_id_lists"]

log = logging.getLogger("holovae")

LIST_NAMES = ("train", "val", "test")


def open_atom3d(dirs) -> list:
    """The :class:`~holovae.data.lba.atom3d.Atom3DLMDB` of each path (``ValueError`` naming a
    path that is not an ATOM3D LMDB dataset; the same folder twice is an error)."""
    seen = {}
    for d in dirs:
        key = Path(d).resolve()
        if key in seen:
            raise ValueError(f"--atom3d {d}: given twice (also as {seen[key]})")
        seen[key] = d
    return [Atom3DLMDB(d) for d in dirs]


def check_lists_out(dirs) -> list:
    """The split name of each ``--atom3d`` folder for ``--lists-out``: exactly three LMDB
    folders named train, val and test (as in ATOM3D's split tarballs), in any order; else
    ``ValueError`` naming what was given."""
    names = [Path(d).resolve().name for d in dirs]
    if len(dirs) != 3 or sorted(names) != sorted(LIST_NAMES):
        given = ", ".join(str(d) for d in dirs)
        raise ValueError(f"--lists-out needs exactly three --atom3d LMDB folders named train, val and test "
                         f"(ATOM3D's split-by-*/data/{{train,val,test}}); got {len(dirs)}: {given}")
    return names


def atom3d_complexes(datasets: list, receptor: str) -> list:
    """The lazy complexes of all ``datasets``, sorted by id (stable: for an id in two datasets,
    the one given first comes first; featurisation skips the second as a duplicate)."""
    found = [c for db in datasets for c in db.complexes(receptor=receptor)]
    return sorted(found, key=lambda c: c.pdb_id)


def atom3d_affinities(complexes: list, index) -> tuple[dict, list, list]:
    """``({pdb id: pK}, [sources], [(id, reason)])``: ``index`` when given
    (:func:`~holovae.data.lba.indexes.read_affinities`); else ``scores.neglog_aff`` of each item
    (decoded one at a time), items without one becoming skipped rows."""
    if index is not None:
        table, tables = read_affinities(index, None)
        return table, tables, []
    table, missing = {}, []
    for c in complexes:
        value = atom3d_score(c.dataset[c.index])
        if value is None:
            missing.append((c.pdb_id, f"{c.dataset.path}[{c.index}]: no scores.neglog_aff in the item"))
        elif c.pdb_id not in table:
            table[c.pdb_id] = value
    sources = list(dict.fromkeys(f"{c.dataset.path} (scores.neglog_aff)" for c in complexes))
    return table, sources, missing


def split_id_lists(named: dict) -> dict:
    """``{"train": ids, "val": ids, "test": ids}`` (lower case, sorted) of the datasets
    ``{name: Atom3DLMDB}``. An id in two of them is an error (``holovae lba-split --lists``
    would refuse it), raised before any featurisation."""
    ids, where = {}, {}
    for name in LIST_NAMES:
        ids[name] = sorted({structure_id(i).lower() for i in named[name].ids})
        for i in ids[name]:
            if i in where:
                raise ValueError(f"--lists-out: {i} is in both {named[where[i]].path} and {named[name].path}")
            where[i] = name
    return ids


def write_id_lists(out_dir, ids: dict) -> Path:
    """``out_dir/{train,val,test}.txt``, one id a line (each written atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in LIST_NAMES:
        write_text_atomic(out_dir / f"{name}.txt", "".join(f"{i}\n" for i in ids[name]))
    log.info("wrote %s/{train,val,test}.txt: %s ids", out_dir, "/".join(str(len(ids[n])) for n in LIST_NAMES))
    return out_dir
