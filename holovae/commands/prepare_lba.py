"""`holovae prepare-lba`: PDBbind-style complex folders or ATOM3D LMDB datasets -> pocket-residue
neighbourhoods -> ZFT -> one LBA HDF5 file (:func:`holovae.data.lba.write_lba_dataset`) and a TSV
of skipped complexes.

The work is :func:`holovae.data.lba.featurize_complexes`. Two inputs, exactly one of them:

* ``--complexes DIR``: PDBbind-style folders. Affinities come from ``--index`` (a PDBbind INDEX
  file or a CSV table, :func:`holovae.data.lba.read_pdbbind_index`) or, without it, from the
  tables found in the complexes folder (:func:`find_affinity_tables`).
* ``--atom3d DIR`` (repeatable): ATOM3D LMDB datasets (:class:`holovae.data.lba.Atom3DLMDB`),
  e.g. the ``train``, ``val`` and ``test`` folders of ATOM3D's LBA split tarballs
  (``split-by-sequence-identity-30/data/{train,val,test}``). Each item holds the complex
  (``atoms_protein``, ``atoms_pocket``, ``atoms_ligand`` tables) and its affinity
  (``scores.neglog_aff``, :func:`holovae.data.lba.atom3d_score`); ``--index`` may still
  override the affinities. The receptor is, by default, the larger of ``atoms_protein`` and
  ``atoms_pocket`` (``--receptor larger``; :data:`holovae.data.lba.ATOM3D_RECEPTORS`): the full
  protein where the release has it, since a neighbourhood at the rim of a cut-out pocket misses
  the protein atoms beyond the cut. Items are read one at a time (twice: once for the affinity,
  once for the atoms), in id order. ``--lists-out DIR`` writes the ids of the ``train``, ``val``
  and ``test`` datasets to ``DIR/{train,val,test}.txt``, the input of ``holovae lba-split --lists``.

``--protocol`` chooses the pocket (:func:`holovae.data.lba_pockets.protocol_pocket`): ``paper``
(default) the residues whose Cα lies within 10 Å of a ligand atom; ``authors`` ATOM3D's 6 Å
pocket, as the authors' released code -- each ATOM3D item's own ``atoms_pocket`` residues with
``--atom3d``, residues with any heavy atom within 6 Å of the ligand otherwise. ``--pocket-cutoff``
replaces the protocol's distance (and with ``--atom3d`` makes ``authors`` measure, not read).

With ``--model`` the transform is the one the encoder was trained with (the ``data_attrs`` that
``holovae train`` stores in the model file), so ``holovae lba-regress --features hae`` can embed
the pockets; an explicit option that contradicts the model is an error, never silently replaced.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import write_text_atomic

log = logging.getLogger("holovae")

# Transform options with their defaults. The parser's defaults are None, so that an option the
# user gave can be told apart from one to be filled in (from the model, or from these).
TRANSFORM_DEFAULTS = {"lmax": 6, "n_max": 20, "r_max": 10.0, "elements": "C,N,O,S",
                      "normalization": "none", "radial": "orthonormal"}
# File names under which PDBbind and its derivatives ship affinity tables.
_TABLE_PATTERNS = ("INDEX_*", "*CoreSet.dat", "*.csv", "*.csv.gz")


def parse_elements(text: str) -> list[str]:
    """``"C,n, O"`` -> ``["C", "N", "O"]``."""
    return [e.strip().upper() for e in text.split(",") if e.strip()]


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


# ------------------------------------------------------------------------------------------------
# transform parameters
# ------------------------------------------------------------------------------------------------
def model_data_attrs(model_path) -> dict:
    """The training data's transform parameters stored in a model file by ``holovae train``,
    with ``irreps_in`` of the model added. Raises ``ValueError`` naming the file when the model
    was not trained on residue neighbourhoods."""
    from ..data.lba import NEIGHBOURHOOD_KINDS
    from ..models.checkpoint import model_transform

    return model_transform(model_path, NEIGHBOURHOOD_KINDS, "residue-neighbourhood model")


def _normalization_option(value) -> str:
    """The CLI spelling of a stored normalisation (``None`` is written ``"none"``)."""
    return "none" if value is None else str(value)


def resolve_transform(args, model_attrs: dict | None) -> dict:
    """The keyword arguments of the transform (``lmax, n_max, r_max, elements, other_channel,
    normalization, radial``, plus ``keep_hetero``): the model's where there is one, with every
    explicitly given option checked against it; the defaults otherwise."""
    given = {"lmax": args.lmax, "n_max": args.n_max, "r_max": args.r_max,
             "elements": None if args.elements is None else parse_elements(args.elements),
             "normalization": args.normalization, "radial": args.radial}
    if model_attrs is None:
        out = {k: v if v is not None else TRANSFORM_DEFAULTS[k] for k, v in given.items()}
        if given["elements"] is None:
            out["elements"] = parse_elements(TRANSFORM_DEFAULTS["elements"])
        out["other_channel"], out["keep_hetero"] = bool(args.other_channel), True
    else:
        from_model = {"lmax": int(model_attrs["lmax"]), "n_max": int(model_attrs["n_max"]),
                      "r_max": float(model_attrs["r_max"]), "elements": [str(e).upper() for e in model_attrs["elements"]],
                      "normalization": _normalization_option(model_attrs["normalization"]),
                      "radial": str(model_attrs["radial"])}
        conflicts = [f"--{k.replace('_', '-')} {_show(v)} (the model's data has {_show(from_model[k])})"
                     for k, v in given.items() if v is not None and v != from_model[k]]
        if args.other_channel and not model_attrs.get("other_channel"):
            conflicts.append("--other-channel (the model's data has no 'other' channel)")
        if conflicts:
            raise ValueError(f"{args.model}: options conflict with the model's training data: {'; '.join(conflicts)}. "
                             "Leave them out to use the model's transform")
        out = dict(from_model, other_channel=bool(model_attrs.get("other_channel", False)),
                   keep_hetero=bool(model_attrs.get("keep_hetero", True)))
    if out["normalization"] not in ("none", "square"):
        raise ValueError(f"unsupported normalization {out['normalization']!r}")
    out["normalization"] = None if out["normalization"] == "none" else out["normalization"]
    if not out["elements"]:
        raise ValueError("--elements names no element")
    return out


def _show(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
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
    :func:`find_affinity_tables` finds and :func:`~holovae.data.lba.read_pdbbind_index` reads
    (a CSV without id/affinity columns is passed over), merged. One id with two different
    values in two tables is an error naming both."""
    from ..data.lba import read_pdbbind_index

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


def select_complexes(found: list, ids_file, max_complexes,
                     source: str = "the complexes directory") -> tuple[list, list]:
    """``(complexes to featurise, skipped rows)``: those named in ``ids_file`` (ids not found
    become ``(id, reason)`` rows), then the first ``max_complexes``; sorted by id as found.
    ``source`` names where the complexes were looked for, in messages."""
    skipped = []
    if ids_file is not None:
        by_id = {c.pdb_id: c for c in found}
        wanted = read_id_list(ids_file)
        missing = [i for i in wanted if i not in by_id]
        if len(missing) == len(wanted):
            raise ValueError(f"{ids_file}: none of its {len(wanted)} ids is a complex found in {source} "
                             f"(e.g. {', '.join(missing[:3])})")
        skipped = [(i, f"not found in {source} (listed in {ids_file})") for i in missing]
        wanted = set(wanted)
        found = [c for c in found if c.pdb_id in wanted]
    if max_complexes is not None:
        if max_complexes < 1:
            raise ValueError(f"--max-complexes must be >= 1, got {max_complexes}")
        found = found[:max_complexes]
    return found, skipped


# ------------------------------------------------------------------------------------------------
# ATOM3D LMDB inputs
# ------------------------------------------------------------------------------------------------
LIST_NAMES = ("train", "val", "test")


def open_atom3d(dirs) -> list:
    """The :class:`~holovae.data.lba.Atom3DLMDB` of each path (``ValueError`` naming a path that
    is not an ATOM3D LMDB dataset; the same folder twice is an error)."""
    from ..data.lba import Atom3DLMDB

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
    (:func:`read_affinities`); else ``scores.neglog_aff`` of each item (decoded one at a time),
    items without one becoming skipped rows."""
    from ..data.lba import atom3d_score

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
    from ..data.structures import structure_id

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


def resolve_receptor(args) -> str:
    """``--receptor``, defaulting to "protein" for ``--complexes`` and "larger" for ``--atom3d``."""
    if args.atom3d:
        return args.receptor or "larger"
    if args.receptor == "larger":
        raise ValueError("--receptor larger applies to --atom3d (the larger of an item's atoms_protein and "
                         "atoms_pocket); for --complexes use protein, protein_or_pocket or pocket")
    return args.receptor or "protein"


# ------------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------------
def run(args) -> None:
    import torch

    from ..data.lba import featurize_complexes, find_complexes, write_lba_dataset, write_skipped

    if args.threads:
        torch.set_num_threads(args.threads)
    if bool(args.complexes) == bool(args.atom3d):
        raise ValueError("give exactly one input: --complexes DIR or --atom3d DIR [--atom3d DIR ...]")
    if args.lists_out and not args.atom3d:
        raise ValueError("--lists-out writes the ids of --atom3d train/val/test LMDB folders; it needs --atom3d")
    from ..data.lba_pockets import pocket_description, protocol_pocket

    receptor = resolve_receptor(args)
    pocket_rule, pocket_cutoff = protocol_pocket(args.protocol, args.pocket_cutoff, listed=bool(args.atom3d))
    names = check_lists_out(args.atom3d) if args.lists_out else None
    model_attrs = model_data_attrs(args.model) if args.model else None
    transform = resolve_transform(args, model_attrs)
    lists = None
    if args.atom3d:
        datasets = open_atom3d(args.atom3d)
        if names is not None:
            lists = split_id_lists(dict(zip(names, datasets)))
        source = ", ".join(str(d) for d in args.atom3d)
        found = atom3d_complexes(datasets, receptor)
        if not found:
            raise ValueError(f"{source}: no items in the ATOM3D LMDB dataset(s)")
        complexes, not_found = select_complexes(found, args.ids, args.max_complexes,
                                                source=f"the ATOM3D LMDB dataset(s) {source}")
        affinities, tables, no_score = atom3d_affinities(complexes, args.index)
        if no_score:
            unscored = {pid for pid, _ in no_score}
            complexes = [c for c in complexes if c.pdb_id not in unscored]
            not_found += no_score
    else:
        source = args.complexes
        found = find_complexes(args.complexes, receptor=receptor)
        if not found:
            raise ValueError(f"{args.complexes}: no complex folders (<id>/<id>_ligand.sdf|mol2 with a protein file)")
        affinities, tables = read_affinities(args.index, args.complexes)
        complexes, not_found = select_complexes(found, args.ids, args.max_complexes)
    log.info("prepare-lba: %d of %d complexes in %s -> %s (L=%d, n_max=%d, r_max=%g, channels %s%s, %s radial, "
             "normalisation %s, pocket: %s (%s protocol), receptor %s%s; affinities from %s)",
             len(complexes), len(found),
             source, args.out, transform["lmax"], transform["n_max"], transform["r_max"],
             ",".join(transform["elements"]), "+other" if transform["other_channel"] else "", transform["radial"],
             transform["normalization"] or "none", pocket_description(pocket_rule, pocket_cutoff), args.protocol,
             receptor,
             f"; transform of {args.model}" if args.model else "", ", ".join(tables))
    f = featurize_complexes(complexes, affinities, pocket_cutoff=pocket_cutoff, pocket_rule=pocket_rule,
                            chunk=args.chunk, progress=not args.no_progress, **transform)
    f.skipped[:0] = not_found
    f.attrs.update(affinity_tables=tables, receptor_choice=receptor, protocol=args.protocol)
    if args.atom3d:
        f.attrs["atom3d"] = {str(db.path): len(db) for db in datasets}
    if args.model:
        f.attrs["model"] = str(args.model)
        _check_against_model(f, model_attrs, args.model)
    if len(f.complex_ids) == 0:
        write_skipped(args.skipped, f.skipped)
        raise ValueError(f"no complex could be used ({len(complexes)} tried): see {args.skipped} "
                         f"(e.g. {'; '.join(f'{a}: {b}' for a, b in f.skipped[:3])})")
    write_lba_dataset(args.out, f)
    write_skipped(args.skipped, f.skipped)
    if lists is not None:
        write_id_lists(args.lists_out, lists)
    _log_summary(args, f, len(complexes))


def _check_against_model(f, model_attrs: dict, model_path) -> None:
    """The data written must be what the model can embed: a mismatch here is a bug, not a user error."""
    from e3nn import o3

    from ..data.lba import transform_mismatches

    mismatches = transform_mismatches(f.attrs, model_attrs)
    if mismatches:
        raise RuntimeError(f"{model_path}: the pocket data came out with another transform: {'; '.join(mismatches)}")
    if o3.Irreps(f.irreps).simplify() != o3.Irreps(model_attrs["irreps_in"]).simplify():
        raise RuntimeError(f"{model_path}: model irreps {model_attrs['irreps_in']} differ from the data's {f.irreps}")


def _log_summary(args, f, n_tried: int) -> None:
    n_rows, t = len(f), f.timings
    elapsed = max(t.get("elapsed_s", 0.0), 1e-9)
    n_bad = sum(1 for pid, _ in f.skipped if "|" not in pid)     # residue rows are "pdb|chain|..."
    log.info("wrote %s: %d pocket neighbourhoods of %d/%d complexes (%d complexes skipped, %d pocket residues "
             "skipped; see %s) in %.1f s: %.2f complexes/s, %.0f neighbourhoods/s (parsing %.1f s, "
             "transform %.1f s)", args.out, n_rows, len(f.complex_ids), n_tried, n_bad, len(f.skipped) - n_bad,
             args.skipped, elapsed, n_tried / elapsed, n_rows / elapsed, t.get("parse_s", 0.0),
             t.get("transform_s", 0.0))


def register(sub) -> None:
    p = sub.add_parser("prepare-lba",
                       help="PDBbind-style complexes or ATOM3D LBA LMDBs -> pocket-residue neighbourhoods -> Zernike "
                            "coefficients (LBA HDF5)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--complexes", default=None, help="folder of PDBbind-style complexes (<id>/<id>_protein.pdb, "
                                                       "<id>_ligand.sdf|mol2), searched recursively")
    src.add_argument("--atom3d", action="append", default=None, metavar="DIR",
                     help="ATOM3D LMDB dataset (a folder with data.mdb, e.g. ATOM3D's LBA split-by-*/data/train); "
                          "repeat for several; complexes and affinities (scores.neglog_aff) come from the items")
    p.add_argument("--index", default=None, help="affinity table: PDBbind INDEX file or CSV (default: the INDEX_* / "
                                                 "*.csv tables in the complexes folder or its index/ folder; with "
                                                 "--atom3d: the items' scores.neglog_aff)")
    p.add_argument("--lists-out", default=None, metavar="DIR",
                   help="with --atom3d .../train --atom3d .../val --atom3d .../test: write DIR/train.txt, val.txt, "
                        "test.txt (their ids; the input of `holovae lba-split --lists`)")
    p.add_argument("--out", required=True, help="output LBA HDF5")
    p.add_argument("--skipped", required=True, help="TSV of skipped complexes and pocket residues with reasons")
    p.add_argument("--model", default=None, help="best.pt of a protein-neighbourhood model: take its data's transform")
    p.add_argument("--lmax", type=int, default=None, help=f"default {TRANSFORM_DEFAULTS['lmax']} (or the model's)")
    p.add_argument("--n-max", type=int, default=None, help=f"default {TRANSFORM_DEFAULTS['n_max']} (or the model's)")
    p.add_argument("--r-max", type=float, default=None,
                   help=f"neighbourhood radius and ZFT r_max in Å, default {TRANSFORM_DEFAULTS['r_max']:g} (or the model's)")
    p.add_argument("--elements", default=None,
                   help=f"comma-separated channel elements, default {TRANSFORM_DEFAULTS['elements']} (or the model's)")
    p.add_argument("--other-channel", action="store_true", help="one extra channel for all other elements")
    p.add_argument("--normalization", default=None, choices=["none", "square"], help="default none (or the model's)")
    p.add_argument("--radial", default=None, choices=["orthonormal", "authors"], help="default orthonormal (or the model's)")
    p.add_argument("--protocol", default="paper", choices=["paper", "authors"],
                   help="pocket: paper = residues whose Cα is within 10 Å of a ligand atom (default); authors = "
                        "ATOM3D's 6 Å pocket as the authors' code (the items' atoms_pocket with --atom3d, else "
                        "residues with any heavy atom within 6 Å); see docs/fidelity.md#lba")
    p.add_argument("--pocket-cutoff", type=float, default=None,
                   help="pocket distance in Å instead of the protocol's (paper: 10, Cα; authors: 6, any atom)")
    p.add_argument("--receptor", default=None, choices=["protein", "protein_or_pocket", "pocket", "larger"],
                   help="receptor: the full protein (default for --complexes), falling back to PDBbind's pocket, or "
                        "the pocket; with --atom3d the atoms_protein / atoms_pocket tables, and 'larger' (default for "
                        "--atom3d): whichever of the two has more atoms")
    p.add_argument("--ids", default=None, help="text file of complex ids (one per line): only these")
    p.add_argument("--max-complexes", type=int, default=None, help="only the first N complexes (by id)")
    p.add_argument("--chunk", type=int, default=4096, help="neighbourhoods per batched Zernike transform")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the transform")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run)
