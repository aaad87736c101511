"""``holovae prepare-lba`` as a function: complexes (PDBbind-style folders or ATOM3D LMDB
datasets) and their affinities -> pocket-residue neighbourhoods -> ZFT -> one LBA HDF5 file
(:func:`~holovae.data.lba.files.write_lba_dataset`) and a TSV of skipped complexes.

Two inputs, exactly one of them:

* ``complexes``: a folder of PDBbind-style complexes (:func:`~holovae.data.lba.complexes.find_complexes`).
  Affinities come from ``index`` (a PDBbind INDEX file or a CSV table,
  :func:`~holovae.data.lba.indexes.read_pdbbind_index`) or, without it, from the tables found in
  the complexes folder (:func:`~holovae.data.lba.indexes.find_affinity_tables`).
* ``atom3d``: ATOM3D LMDB datasets (:class:`~holovae.data.lba.atom3d.Atom3DLMDB`), e.g. the
  ``train``, ``val`` and ``test`` folders of ATOM3D's LBA split tarballs
  (``split-by-sequence-identity-30/data/{train,val,test}``). Each item holds the complex
  (``atoms_protein``, ``atoms_pocket``, ``atoms_ligand`` tables) and its affinity
  (``scores.neglog_aff``, :func:`~holovae.data.lba.atom3d.atom3d_score`); ``index`` may still
  override the affinities. The receptor is, by default, the larger of ``atoms_protein`` and
  ``atoms_pocket`` (``receptor="larger"``; :data:`~holovae.data.lba.atom3d.ATOM3D_RECEPTORS`):
  the full protein where the release has it, since a neighbourhood at the rim of a cut-out
  pocket misses the protein atoms beyond the cut. Items are read one at a time (twice: once for
  the affinity, once for the atoms), in id order. ``lists_out`` writes the ids of the ``train``,
  ``val`` and ``test`` datasets to ``lists_out/{train,val,test}.txt``, the input of
  ``holovae lba-split --lists``.

``protocol`` chooses the pocket (:func:`~holovae.data.lba.pockets.protocol_pocket`): ``paper``
the residues whose Cα lies within 10 Å of a ligand atom; ``authors`` ATOM3D's 6 Å pocket, as the
authors' released code -- each ATOM3D item's own ``atoms_pocket`` residues with ``atom3d``,
residues with any heavy atom within 6 Å of the ligand otherwise. ``pocket_cutoff`` replaces the
protocol's distance (and with ``atom3d`` makes ``authors`` measure, not read).

With ``model`` the transform is the one the encoder was trained with
(:func:`~holovae.data.lba.transform.resolve_transform`), so that ``holovae lba-regress
--features hae`` can embed the pockets; ``other_channel`` then adds the "other element" channel
to it (data for the Zernike-invariant baseline, which the model itself cannot embed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

from .atom3d_inputs import (atom3d_affinities, atom3d_complexes, check_lists_out, open_atom3d, split_id_lists,
                            write_id_lists)
from .complexes import find_complexes
from .featurize import LBAFeaturized, featurize_complexes
from .files import write_lba_dataset, write_skipped
from .indexes import read_affinities, read_id_list
from .pockets import pocket_description, protocol_pocket
from .transform import adds_other_channel, check_against_model, model_data_attrs, resolve_transform

__all__ = ["PreparedLBA", "prepare_lba", "select_complexes", "resolve_receptor"]

log = logging.getLogger("holovae")


@dataclass
class PreparedLBA:
    """What :func:`prepare_lba` wrote: the featurised ``data`` and how many complexes were tried."""

    data: LBAFeaturized
    n_tried: int


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


def resolve_receptor(receptor: Optional[str], atom3d: bool) -> str:
    """``receptor``, defaulting to "protein" for PDBbind-style folders and "larger" for ATOM3D."""
    if atom3d:
        return receptor or "larger"
    if receptor == "larger":
        raise ValueError("--receptor larger applies to --atom3d (the larger of an item's atoms_protein and "
                         "atoms_pocket); for --complexes use protein, protein_or_pocket or pocket")
    return receptor or "protein"


def prepare_lba(out, skipped, *, complexes=None, atom3d: Optional[Sequence] = None, index=None, lists_out=None,
                model=None, transform: Optional[dict] = None, protocol: str = "paper",
                pocket_cutoff: Optional[float] = None, receptor: Optional[str] = None, ids=None,
                max_complexes: Optional[int] = None, chunk: int = 4096, progress: bool = True) -> PreparedLBA:
    """Featurise the complexes of ``complexes`` or ``atom3d`` (see the module docstring) and write
    ``out`` (LBA HDF5), ``skipped`` (TSV) and, with ``lists_out``, the ATOM3D split lists.
    ``transform``: the options given (keyword arguments of
    :func:`~holovae.data.lba.transform.resolve_transform`; ``None`` values are not given);
    ``ids``: a file of complex ids (only these); ``max_complexes``: the first N by id.
    Every option is checked before the first complex is read; when no complex can be used,
    the skipped TSV is written and ``ValueError`` raised, with no data file."""
    if bool(complexes) == bool(atom3d):
        raise ValueError("give exactly one input: --complexes DIR or --atom3d DIR [--atom3d DIR ...]")
    if lists_out and not atom3d:
        raise ValueError("--lists-out writes the ids of --atom3d train/val/test LMDB folders; it needs --atom3d")
    receptor = resolve_receptor(receptor, bool(atom3d))
    pocket_rule, pocket_cutoff = protocol_pocket(protocol, pocket_cutoff, listed=bool(atom3d))
    names = check_lists_out(atom3d) if lists_out else None
    model_attrs = model_data_attrs(model) if model else None
    kwargs = resolve_transform(model_attrs, model, **(transform or {}))
    lists = None
    if atom3d:
        datasets = open_atom3d(atom3d)
        if names is not None:
            lists = split_id_lists(dict(zip(names, datasets)))
        source = ", ".join(str(d) for d in atom3d)
        found = atom3d_complexes(datasets, receptor)
        if not found:
            raise ValueError(f"{source}: no items in the ATOM3D LMDB dataset(s)")
        chosen, not_found = select_complexes(found, ids, max_complexes, source=f"the ATOM3D LMDB dataset(s) {source}")
        affinities, tables, no_score = atom3d_affinities(chosen, index)
        if no_score:
            unscored = {pid for pid, _ in no_score}
            chosen = [c for c in chosen if c.pdb_id not in unscored]
            not_found += no_score
    else:
        source = complexes
        found = find_complexes(complexes, receptor=receptor)
        if not found:
            raise ValueError(f"{complexes}: no complex folders (<id>/<id>_ligand.sdf|mol2 with a protein file)")
        affinities, tables = read_affinities(index, complexes)
        chosen, not_found = select_complexes(found, ids, max_complexes)
    added = model_attrs is not None and adds_other_channel(kwargs, model_attrs)
    log.info("prepare-lba: %d of %d complexes in %s -> %s (L=%d, n_max=%d, r_max=%g, channels %s%s, %s radial, "
             "normalisation %s, pocket: %s (%s protocol), receptor %s%s; affinities from %s)",
             len(chosen), len(found), source, out, kwargs["lmax"], kwargs["n_max"], kwargs["r_max"],
             ",".join(kwargs["elements"]), "+other" if kwargs["other_channel"] else "", kwargs["radial"],
             kwargs["normalization"] or "none", pocket_description(pocket_rule, pocket_cutoff), protocol, receptor,
             f"; transform of {model}{' + the other-element channel' if added else ''}" if model else "",
             ", ".join(tables))
    f = featurize_complexes(chosen, affinities, pocket_cutoff=pocket_cutoff, pocket_rule=pocket_rule,
                            chunk=chunk, progress=progress, **kwargs)
    f.skipped[:0] = not_found
    f.attrs.update(affinity_tables=tables, receptor_choice=receptor, protocol=protocol)
    if atom3d:
        f.attrs["atom3d"] = {str(db.path): len(db) for db in datasets}
    if model:
        f.attrs["model"] = str(model)
        check_against_model(f.attrs, f.irreps, model_attrs, model)
    if len(f.complex_ids) == 0:
        write_skipped(skipped, f.skipped)
        raise ValueError(f"no complex could be used ({len(chosen)} tried): see {skipped} "
                         f"(e.g. {'; '.join(f'{a}: {b}' for a, b in f.skipped[:3])})")
    write_lba_dataset(out, f)
    write_skipped(skipped, f.skipped)
    if lists is not None:
        write_id_lists(lists_out, lists)
    return PreparedLBA(f, len(chosen))
