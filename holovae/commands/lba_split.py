"""`holovae lba-split`: a train / validation / test split of LBA complexes by protein sequence
identity, as one JSON read by ``holovae lba-regress``.

Two sources:

* ``--lists DIR``: ATOM3D's own split lists (``train.txt``, ``val.txt``, ``test.txt``, one PDB
  id per line) -> one fixed fold, taken as given (no clustering);
* otherwise the proteins of the complexes (:func:`holovae.data.sequence_split.protein_sequence`
  of each full protein file, or of the PDBbind pocket file of a complex that has no protein
  file, as ``prepare-lba --receptor protein_or_pocket`` takes it) are clustered at ``--min-identity``
  (:func:`~holovae.data.sequence_split.cluster_by_identity`) and whole clusters go to the sets:
  ``--folds K`` gives K cross-validation folds (:func:`holovae.evaluate.regression.grouped_cv_splits`,
  the validation set carved from each fold's training clusters), else one fixed split with
  ``--fractions`` (:func:`~holovae.data.sequence_split.identity_split`). The highest identity
  between sets is then measured by exact alignment
  (:func:`~holovae.data.sequence_split.check_split_identity`) and stated in the caption.

The JSON: ``kind`` ("cv" / "fixed"), ``source`` ("atom3d-lists" / "sequence-identity"),
``folds`` ([{"train", "val", "test"}], sorted id lists), ``method``, ``min_identity``,
``clusters`` ({id: cluster index}), ``max_cross_identity``, ``caption``, ``excluded``
({id: reason} of complexes left out), ``sequenced_from_pocket`` (ids whose sequences are their
pocket's) and the provenance of the clustering.
"""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

log = logging.getLogger("holovae")

SET_NAMES = ("train", "val", "test")


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> ``(0.8, 0.1, 0.1)``."""
    try:
        values = tuple(float(v) for v in text.split(","))
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
    from ..data.lba import find_complexes
    from .prepare_lba import read_id_list

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
    from ..data.sequence_split import protein_sequence, read_chains_fasta
    from ..data.structures import StructureError

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
    from .prepare_lba import read_id_list

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
    import numpy as np

    from ..evaluate.regression import grouped_cv_splits

    groups = np.array([cluster_of[i] for i in ids])
    return [{name: sorted(ids[k] for k in index) for name, index in zip(SET_NAMES, split)}
            for split in grouped_cv_splits(groups, n_folds=n_folds, seed=seed, val_fraction=val_fraction)]


def fixed_fold(clusters, fractions, seed: int) -> dict:
    """One ``{"train", "val", "test"}`` fold of whole clusters (:func:`~holovae.data.sequence_split.identity_split`)."""
    from ..data.sequence_split import identity_split

    return dict(identity_split(clusters, fractions=fractions, seed=seed)._asdict())


def cross_set_identity(sequences: dict, folds: list[dict]):
    """:class:`~holovae.data.sequence_split.CrossSetIdentity` of the split: for CV, between the
    test sets of different folds (every train/test and val/test pair of a fold is such a pair,
    and each is aligned once); for one fold, between its three sets."""
    from ..data.sequence_split import check_split_identity

    sets = ({f"fold {k} test": f["test"] for k, f in enumerate(folds)} if len(folds) > 1
            else {name: folds[0][name] for name in SET_NAMES})
    return check_split_identity(sequences, sets)


# ------------------------------------------------------------------------------------------------
# caption
# ------------------------------------------------------------------------------------------------
_METHOD_WORDS = {"mmseqs": "mmseqs2 easy-cluster", "align": "pairwise global alignments, single linkage"}


def _sets_words(folds: list[dict]) -> str:
    """"5 cross-validation folds" or "train/validation/test sets of 56/7/7 complexes"."""
    if len(folds) > 1:
        return f"{len(folds)} cross-validation folds"
    return "train/validation/test sets of " + "/".join(str(len(folds[0][n])) for n in SET_NAMES) + " complexes"


def identity_caption(clusters, n_complexes: int, folds: list[dict], check, n_pocket: int = 0) -> str:
    """One sentence for a table caption, e.g. "Split at 30% sequence identity (mmseqs2
    easy-cluster, 54 clusters of 70 complexes) into 5 cross-validation folds; highest
    train/test identity 28%."; ``n_pocket``: complexes sequenced from their pocket file."""
    pockets = f", {n_pocket} of them sequenced from their pocket file" if n_pocket else ""
    sentence = (f"Split at {clusters.min_identity:.0%} protein sequence identity ({_METHOD_WORDS[clusters.method]}, "
                f"{len(clusters)} clusters of {n_complexes} complexes{pockets}) into {_sets_words(folds)}")
    between = "folds" if len(folds) > 1 else "sets"
    if check is None:
        return sentence + "."
    if math.isnan(check.max_identity):
        return sentence + f"; no significant alignment between {between} reaches {check.floor:.0%} identity."
    return sentence + f"; highest identity between {between} {check.max_identity:.0%} ({check.id_a}/{check.id_b})."


def lists_caption(folds: list[dict], n_excluded: int) -> str:
    """One sentence for a table caption of a split taken from ATOM3D's lists."""
    left = f"; {n_excluded} listed complexes not available here" if n_excluded else ""
    return f"ATOM3D's split lists: {_sets_words(folds)}{left}."


# ------------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------------
def build_split(args) -> dict:
    """The JSON object of the split described by ``args``."""
    # every option is checked before the (possibly long) clustering
    if args.folds is not None and args.folds < 2:
        raise ValueError(f"--folds must be >= 2 (or left out for a fixed split), got {args.folds}")
    if not 0 < args.min_identity <= 1:
        raise ValueError(f"--min-identity must be in (0, 1], got {args.min_identity}")
    if not 0 <= args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.lists and args.folds is not None:
        raise ValueError("--lists gives ATOM3D's one fixed split; --folds does not apply")
    fractions = parse_fractions(args.fractions)
    if args.lists and not args.complexes:   # ATOM3D's LMDBs: the lists are the complexes
        return atom3d_lists_json(args.lists, None)
    if not args.complexes:
        raise ValueError("--complexes is needed (the proteins' sequences), unless --lists gives the split")
    complexes = list_complexes(args.complexes, args.ids)
    if args.lists:
        return atom3d_lists_json(args.lists, complexes)
    return sequence_identity_json(args, complexes, fractions)


def atom3d_lists_json(lists_dir, complexes: list | None) -> dict:
    """The split JSON of ATOM3D's lists (one fixed fold, no clustering)."""
    fold, excluded = lists_split(lists_dir, complexes)
    return {"kind": "fixed", "source": "atom3d-lists", "folds": [fold], "method": None, "min_identity": None,
            "clusters": None, "max_cross_identity": None, "caption": lists_caption([fold], len(excluded)),
            "excluded": excluded, "lists": str(lists_dir)}


def sequence_identity_json(args, complexes: list, fractions) -> dict:
    """The split JSON of whole identity clusters: CV folds (``args.folds``) or one fixed fold."""
    from ..data.sequence_split import cluster_by_identity

    sequences, excluded, from_pocket = read_sequences(complexes)
    if len(sequences) < 3:
        raise ValueError(f"{args.complexes}: {len(sequences)} complexes with a readable protein or pocket sequence; "
                         "a split needs at least 3")
    clusters = cluster_by_identity(sequences, min_identity=args.min_identity, method=args.method,
                                   threads=args.threads or 1)
    cluster_of = clusters.cluster_of()
    ids = sorted(sequences)
    if args.folds is not None:
        folds = cv_folds(ids, cluster_of, args.folds, args.seed, args.val_fraction)
    else:
        folds = [fixed_fold(clusters, fractions, args.seed)]
    check = cross_set_identity(sequences, folds) if args.identity_check else None
    max_cross = None if check is None or math.isnan(check.max_identity) else float(check.max_identity)
    out = {"kind": "cv" if args.folds is not None else "fixed", "source": "sequence-identity", "folds": folds,
           "method": clusters.method, "min_identity": float(args.min_identity),
           "clusters": {i: int(cluster_of[i]) for i in ids}, "max_cross_identity": max_cross,
           "caption": identity_caption(clusters, len(ids), folds, check, len(from_pocket)), "excluded": excluded,
           "sequenced_from_pocket": sorted(from_pocket),
           "n_clusters": len(clusters), "seed": int(args.seed), "command": clusters.command,
           "version": clusters.version}
    out.update({"val_fraction": float(args.val_fraction)} if args.folds is not None
               else {"fractions": list(fractions)})
    if check is not None:
        out["identity_check"] = identity_check_json(check)
    return out


def identity_check_json(check) -> dict:
    """A :class:`~holovae.data.sequence_split.CrossSetIdentity` as JSON (``null`` for what is
    undefined when no significant alignment reaches the floor)."""
    significant = not math.isnan(check.max_identity)
    return {"max_identity": float(check.max_identity) if significant else None,
            "pair": [check.id_a, check.id_b] if significant else None,
            "sets": [check.set_a, check.set_b] if significant else None,
            "z_score": float(check.z_score) if significant and math.isfinite(check.z_score) else None,
            "max_unfiltered": float(check.max_unfiltered), "floor": float(check.floor), "caption": check.caption()}


def run(args) -> None:
    from ..atomic import write_json_atomic

    split = build_split(args)
    write_json_atomic(args.out, split)
    sizes = ", ".join("/".join(str(len(f[n])) for n in SET_NAMES) for f in split["folds"])
    log.info("wrote %s: %s split (%s), train/val/test %s, %d excluded. %s", args.out, split["kind"],
             split["source"], sizes, len(split["excluded"]), split["caption"])


def register(sub) -> None:
    p = sub.add_parser("lba-split", help="train/val/test split (or CV folds) of LBA complexes by protein sequence "
                                         "identity, or from ATOM3D's split lists")
    p.add_argument("--complexes", default=None,
                   help="folder of PDBbind-style complexes (as for prepare-lba); optional with --lists")
    p.add_argument("--out", required=True, help="output split JSON")
    p.add_argument("--method", default="auto", choices=["auto", "mmseqs", "align"],
                   help="clustering: mmseqs2 (auto: when on PATH) or exact pairwise alignments")
    p.add_argument("--min-identity", type=float, default=0.3,
                   help="complexes whose proteins reach this identity share a cluster")
    p.add_argument("--folds", type=int, default=None, help="K >= 2: K cross-validation folds grouped by cluster; "
                                                           "default: one fixed split with --fractions")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,val,test shares of the fixed split")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="CV: share of each fold's non-test complexes (whole clusters) held out for validation")
    p.add_argument("--seed", type=int, default=0, help="order in which clusters are dealt to sets")
    p.add_argument("--lists", default=None, help="folder with ATOM3D's train.txt, val.txt, test.txt: use them")
    p.add_argument("--ids", default=None, help="text file of complex ids (one per line): only these")
    p.add_argument("--threads", type=int, default=None, help="mmseqs2 threads")
    p.add_argument("--identity-check", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the highest identity between sets by exact alignment (quadratic; "
                        "--no-identity-check for thousands of complexes)")
    p.set_defaults(func=run)
