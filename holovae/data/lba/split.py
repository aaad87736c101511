"""A train / validation / test split of LBA complexes by protein sequence identity, as one JSON
(written by ``holovae lba-split``, read by :func:`holovae.data.lba.folds.read_split`).

Two sources:

* ``lists``: ATOM3D's own split lists (``train.txt``, ``val.txt``, ``test.txt``, one PDB
  id per line) -> one fixed fold, taken as given (no clustering);
* otherwise the proteins of the complexes (:func:`holovae.data.sequence_split.protein_sequence`
  of each full protein file, or of the PDBbind pocket file of a complex that has no protein
  file, as ``prepare-lba --receptor protein_or_pocket`` takes it) are clustered at
  ``min_identity`` (:func:`~holovae.data.sequence_split.cluster_by_identity`) and whole clusters
  go to the sets: ``folds=K`` gives K cross-validation folds
  (:func:`holovae.evaluate.regression.grouped_cv_splits`, the validation set carved from each
  fold's training clusters), else one fixed split with ``fractions``
  (:func:`~holovae.data.sequence_split.identity_split`). The highest identity
  between sets is then measured by exact alignment
  (:func:`~holovae.data.sequence_split.check_split_identity`) and stated in the caption.

The JSON: ``kind`` ("cv" / "fixed"), ``source`` ("atom3d-lists" / "sequence-identity"),
``folds`` ([{"train", "val", "test"}], sorted id lists), ``method``, ``min_identity``,
``clusters`` ({id: cluster index}), ``max_cross_identity``, ``caption``, ``excluded``
({id: reason} of complexes left out), ``sequenced_from_pocket`` (ids whose sequences are their
pocket's) and the provenance of the clustering.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import numpy as np

from ..sequence_split import (check_split_identity, cluster_by_identity, identity_split, protein_sequence,
                              read_chains_fasta)
from ..structures import StructureError
from .complexes import find_complexes
from .folds import SET_NAMES
from .indexes import read_id_list
from .split_caption import identity_caption, identity_check_json, lists_caption

__all__ = ["build_split", "parse_fractions", "list_complexes", "read_sequences", "lists_split", "cv_folds",
           "fixed_fold", "cross_set_identity", "atom3d_lists_json", "sequence_identity_json"]

log = logging.getLogger("holovae")

def parse_fractions(text) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or three numbers) -> ``(0.8, 0.1, 0.1)``, checked."""
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise ValueError(f"--fractions expects three comma-separated numbers, got {text!r}") from None
    if len(values) != 3 or min(values) < 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"--fractions expects three non-negative numbers (train, val, test) summing to 1, "
                         f"got {text!r}")
    return values


# ------------------------------------------------------------------------------------------------
# complexes and their sequences
# ------------------------------------------------------------------------------------------------
def list_complexes(directory, ids_file) -> list:
    """The complexes under ``directory`` (:func:`~holovae.data.lba.find_complexes`), only those
    of ``ids_file`` when given (an id found nowhere is an error: a typo would silently shrink the
    split)."""
    found = find_complexes(directory, receptor="protein_or_pocket")
    if not found:
        raise ValueError(f"{directory}: no complex folders (<id>/<id>_ligand.sdf|mol2)")
    if ids_file is None:
        return found
    wanted = set(read_id_list(ids_file))
    unknown = sorted(wanted - {c.pdb_id for c in found})
    if unknown:
        raise ValueError(f"{ids_file}: {len(unknown)} id(s) not found under {directory}: {', '.join(unknown[:10])}")
    return [c for c in found if c.pdb_id in wanted]


def read_sequences(complexes: list) -> tuple[dict, dict, list]:
    """``({id: chain sequences}, {id: reason}, [ids sequenced from their pocket])``: the
    amino-acid chains of each complex's full protein file, else of its ``<id>_chains.fasta``
    (the full protein's chains, shipped with a pocket-only folder), else of its PDBbind pocket
    file as ``prepare-lba --receptor protein_or_pocket`` takes it (its chains' pocket residues in
    file order: fragments, which align inside the full chain of the same protein, identity being
    counted over the shorter sequence; two pockets of one protein at different sites do not
    link). Complexes with none of these, or whose file cannot be read, are excluded with the
    reason."""
    sequences, excluded, from_pocket = {}, {}, []
    for c in complexes:
        fasta = getattr(c, "sequences", None)
        if c.protein is not None:
            source, read, what = c.protein, protein_sequence, "protein"
        elif fasta is not None:
            source, read, what = fasta, read_chains_fasta, "chains FASTA"
        elif c.receptor is not None:
            source, read, what = c.receptor, protein_sequence, c.receptor_kind
        else:
            excluded[c.pdb_id] = (f"no protein, <id>_chains.fasta or pocket file in {c.directory} "
                                  "(<id>_protein.pdb, <id>_chains.fasta or <id>_pocket.pdb)")
            continue
        try:
            chains = tuple(s for s in read(source).values() if s)
        except (StructureError, OSError, EOFError, ValueError) as exc:
            excluded[c.pdb_id] = f"{what} does not parse: {exc}"
            continue
        if not chains:
            excluded[c.pdb_id] = f"{source}: no amino-acid chain"
            continue
        sequences[c.pdb_id] = chains
        if what == "pocket":
            from_pocket.append(c.pdb_id)
    for pid, reason in excluded.items():
        log.warning("left out of the split: %s: %s", pid, reason)
    if from_pocket:
        # measured on the 70 shared PDBbind complexes that have both files: clustered by their
        # pockets they kept 27 of the 34 same-cluster pairs their proteins give (7 split: pockets
        # of one protein at different sites share no fragment)
        log.warning("%d of %d complexes sequenced from their pocket file (no protein file): %s; pocket fragments "
                    "link fewer homologs than full chains do", len(from_pocket), len(sequences),
                    ", ".join(from_pocket[:10]) + (" ..." if len(from_pocket) > 10 else ""))
    return sequences, excluded, from_pocket


# ------------------------------------------------------------------------------------------------
# splits
# ------------------------------------------------------------------------------------------------
def lists_split(lists_dir, complexes: list | None) -> tuple[dict, dict]:
    """``(fold, excluded)`` from ATOM3D's ``train.txt``, ``val.txt``, ``test.txt`` in
    ``lists_dir``, restricted to ``complexes`` (listed ids not among them are excluded);
    ``None``: no restriction (the complexes are the lists', as with ATOM3D's own LMDBs)."""
    lists_dir = Path(lists_dir)
    sets = {name: read_id_list(lists_dir / f"{name}.txt") for name in SET_NAMES}
    seen: dict = {}
    for name, ids in sets.items():
        for i in ids:
            if i in seen:
                raise ValueError(f"{lists_dir}: {i} is in both {seen[i]}.txt and {name}.txt")
            seen[i] = name
    present = set(seen) if complexes is None else {c.pdb_id for c in complexes}
    excluded = {i: f"in {seen[i]}.txt but not among the complexes" for i in seen if i not in present}
    fold = {name: sorted(i for i in ids if i in present) for name, ids in sets.items()}
    for name, ids in fold.items():
        if not ids:
            raise ValueError(f"{lists_dir / (name + '.txt')}: none of its ids is among the {len(present)} complexes")
    return fold, excluded


def cv_folds(ids: list, cluster_of: dict, n_folds: int, seed: int, val_fraction: float) -> list[dict]:
    """``n_folds`` folds ``{"train", "val", "test"}`` of ``ids`` with whole clusters in each set
    (:func:`~holovae.evaluate.regression.grouped_cv_splits`)."""
    from ...evaluate.regression import grouped_cv_splits

    groups = np.array([cluster_of[i] for i in ids])
    return [{name: sorted(ids[k] for k in index) for name, index in zip(SET_NAMES, split)}
            for split in grouped_cv_splits(groups, n_folds=n_folds, seed=seed, val_fraction=val_fraction)]


def fixed_fold(clusters, fractions, seed: int) -> dict:
    """One ``{"train", "val", "test"}`` fold of whole clusters (:func:`~holovae.data.sequence_split.identity_split`)."""
    return dict(identity_split(clusters, fractions=fractions, seed=seed)._asdict())


def cross_set_identity(sequences: dict, folds: list[dict]):
    """:class:`~holovae.data.sequence_split.CrossSetIdentity` of the split: for CV, between the
    test sets of different folds (every train/test and val/test pair of a fold is such a pair,
    and each is aligned once); for one fold, between its three sets."""
    sets = ({f"fold {k} test": f["test"] for k, f in enumerate(folds)} if len(folds) > 1
            else {name: folds[0][name] for name in SET_NAMES})
    return check_split_identity(sequences, sets)


def build_split(*, complexes=None, lists=None, ids=None, folds: Optional[int] = None,
                fractions="0.8,0.1,0.1", val_fraction: float = 0.1, min_identity: float = 0.3,
                method: str = "auto", seed: int = 0, threads: Optional[int] = None,
                identity_check: bool = True) -> dict:
    """The JSON object of a split (see the module docstring): of ATOM3D's ``lists`` (a folder of
    train/val/test.txt), else of the complexes under ``complexes`` (only those of the id file
    ``ids``) clustered at ``min_identity`` by ``method``: ``folds`` cross-validation folds
    (``val_fraction`` of each fold's non-test clusters for validation) or one fixed split with
    ``fractions`` (train, val, test; or their text "0.8,0.1,0.1"), clusters dealt in the order of
    ``seed``; ``identity_check`` measures the highest identity between sets."""
    # every option is checked before the (possibly long) clustering
    if folds is not None and folds < 2:
        raise ValueError(f"--folds must be >= 2 (or left out for a fixed split), got {folds}")
    if not 0 < min_identity <= 1:
        raise ValueError(f"--min-identity must be in (0, 1], got {min_identity}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if lists and folds is not None:
        raise ValueError("--lists gives ATOM3D's one fixed split; --folds does not apply")
    fractions = parse_fractions(fractions)
    if lists and not complexes:   # ATOM3D's LMDBs: the lists are the complexes
        return atom3d_lists_json(lists, None)
    if not complexes:
        raise ValueError("--complexes is needed (the proteins' sequences), unless --lists gives the split")
    found = list_complexes(complexes, ids)
    if lists:
        return atom3d_lists_json(lists, found)
    return sequence_identity_json(complexes, found, fractions=fractions, folds=folds, val_fraction=val_fraction,
                                  min_identity=min_identity, method=method, seed=seed, threads=threads,
                                  identity_check=identity_check)


def atom3d_lists_json(lists_dir, complexes: list | None) -> dict:
    """The split JSON of ATOM3D's lists (one fixed fold, no clustering)."""
    fold, excluded = lists_split(lists_dir, complexes)
    return {"kind": "fixed", "source": "atom3d-lists", "folds": [fold], "method": None, "min_identity": None,
            "clusters": None, "max_cross_identity": None, "caption": lists_caption([fold], len(excluded)),
            "excluded": excluded, "lists": str(lists_dir)}


def sequence_identity_json(directory, complexes: list, *, fractions, folds: Optional[int], val_fraction: float,
                           min_identity: float, method: str, seed: int, threads: Optional[int],
                           identity_check: bool) -> dict:
    """The split JSON of whole identity clusters of ``complexes`` (found under ``directory``):
    ``folds`` CV folds or, for ``None``, one fixed fold (:func:`build_split`'s options)."""
    sequences, excluded, from_pocket = read_sequences(complexes)
    if len(sequences) < 3:
        raise ValueError(f"{directory}: {len(sequences)} complexes with a readable protein or pocket sequence; "
                         "a split needs at least 3")
    clusters = cluster_by_identity(sequences, min_identity=min_identity, method=method, threads=threads or 1)
    cluster_of = clusters.cluster_of()
    ids = sorted(sequences)
    if folds is not None:
        made = cv_folds(ids, cluster_of, folds, seed, val_fraction)
    else:
        made = [fixed_fold(clusters, fractions, seed)]
    check = cross_set_identity(sequences, made) if identity_check else None
    max_cross = None if check is None or math.isnan(check.max_identity) else float(check.max_identity)
    out = {"kind": "cv" if folds is not None else "fixed", "source": "sequence-identity", "folds": made,
           "method": clusters.method, "min_identity": float(min_identity),
           "clusters": {i: int(cluster_of[i]) for i in ids}, "max_cross_identity": max_cross,
           "caption": identity_caption(clusters, len(ids), made, check, len(from_pocket)), "excluded": excluded,
           "sequenced_from_pocket": sorted(from_pocket),
           "n_clusters": len(clusters), "seed": int(seed), "command": clusters.command,
           "version": clusters.version}
    out.update({"val_fraction": float(val_fraction)} if folds is not None
               else {"fractions": list(fractions)})
    if check is not None:
        out["identity_check"] = identity_check_json(check)
    return out
