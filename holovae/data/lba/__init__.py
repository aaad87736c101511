"""Protein–ligand complexes -> pocket-residue neighbourhoods -> Zernike coefficients (ATOM3D LBA).

The ligand-binding-affinity task of the paper (ATOM3D LBA, built from the PDBbind refined set):

* **pocket residues**: standard amino acids with N, Cα and C (the centres of
  :func:`~holovae.data.neighbourhoods.centre_residues`) whose Cα lies within ``pocket_cutoff``
  (10 Å, inclusive) of any ligand heavy atom -- the paper's rule; ATOM3D's 6 Å pocket, which
  the authors' released code uses, is ``pocket_rule="any_atom"`` or, for ATOM3D items, their
  own pocket table (``"listed"``; :mod:`holovae.data.lba.pockets`);
* **neighbourhood** of a pocket residue: every heavy atom of the complex (protein, its hetero
  groups such as ions and cofactors, and the ligand; no waters, no hydrogens) within ``r_max``
  of its Cα, centred there, the central Cα dropped -- exactly the protein neighbourhoods of
  :func:`~holovae.data.neighbourhoods.neighbourhoods`, computed on the protein with the ligand
  added as one more hetero residue;
* the same Zernike transform as the protein-neighbourhood data, so that a model trained on
  those can embed these (:func:`transform_mismatches` says whether the parameters agree).

A complex that cannot be used is skipped with its reason; the others go on. Complexes come from
PDBbind-style folders (:func:`find_complexes`), from memory (:class:`LoadedComplex`) or from an
ATOM3D LMDB dataset (:class:`Atom3DLMDB`, e.g. ATOM3D's own LBA files).

One module per step; every public name is re-exported here (``from holovae.data.lba import X``):

==================  ===========================================================================
``indexes``         affinity tables (PDBbind INDEX files, CSV) and lists of complex ids
``ligands``         ligand files (SDF, MOL2) -> heavy atoms
``complexes``       PDBbind-style complex folders, complexes in memory
``atom3d``          ATOM3D LMDB datasets: items -> complexes and affinities
``atom3d_inputs``   ATOM3D folders as ``prepare-lba`` inputs, their train/val/test id lists
``pockets``         which residues form the pocket (paper's or ATOM3D's rule), their neighbourhoods
``featurize``       complexes -> pocket-residue Zernike coefficients (:class:`LBAFeaturized`)
``transform``       the transform: options or a model's, and whether two datasets' agree
``files``           the LBA HDF5 file and the skipped-complexes TSV
``prepare``         ``holovae prepare-lba`` as a function
``split``           ``holovae lba-split`` as a function (``split_caption``: the split's words)
``folds``           reading a split JSON and mapping it onto a data file's complexes
``errors``          why a complex is skipped
==================  ===========================================================================
"""
from .atom3d import (ATOM3D_RECEPTORS, Atom3DComplex, Atom3DLMDB, atom3d_ligand, atom3d_pocket_cas, atom3d_score,
                     atom3d_structure)
from .atom3d_inputs import (LIST_NAMES, atom3d_affinities, atom3d_complexes, check_lists_out, open_atom3d,
                            split_id_lists, write_id_lists)
from .complexes import ComplexFiles, LoadedComplex, find_complexes
from .errors import ComplexError, LigandError
from .featurize import KIND, LBAFeaturized, featurize_complexes
from .files import read_lba_dataset, write_lba_dataset, write_skipped
from .folds import SET_NAMES, AlignedSplit, FoldRows, align_split, read_split
from .indexes import find_affinity_tables, read_affinities, read_id_list, read_pdbbind_index
from .ligands import HYDROGENS, Ligand, read_ligand, read_mol2, read_sdf
from .pockets import (LIGAND_RESNAME, POCKET_RULES, PROTOCOL_POCKET, PROTOCOLS, add_ligand, complex_neighbourhoods,
                      data_pocket, pocket_description, pocket_mask, pocket_protocol, pocket_residues, protocol_pocket,
                      residue_keys, residue_ligand_distance)
from .prepare import PreparedLBA, prepare_lba, resolve_receptor, select_complexes
from .split import build_split
from .transform import (NEIGHBOURHOOD_KINDS, TRANSFORM_DEFAULTS, TRANSFORM_KEYS, adds_other_channel,
                        check_against_model, model_data_attrs, parse_elements, resolve_transform,
                        transform_mismatches)

__all__ = [
    "KIND", "LIGAND_RESNAME", "TRANSFORM_KEYS", "TRANSFORM_DEFAULTS", "NEIGHBOURHOOD_KINDS", "HYDROGENS",
    "ComplexError", "LigandError",
    "read_pdbbind_index", "find_affinity_tables", "read_affinities", "read_id_list",
    "Ligand", "read_sdf", "read_mol2", "read_ligand",
    "ComplexFiles", "LoadedComplex", "find_complexes",
    "Atom3DLMDB", "Atom3DComplex", "ATOM3D_RECEPTORS", "atom3d_structure", "atom3d_ligand", "atom3d_pocket_cas",
    "atom3d_score", "LIST_NAMES", "open_atom3d", "check_lists_out", "atom3d_complexes", "atom3d_affinities",
    "split_id_lists", "write_id_lists",
    "PROTOCOLS", "POCKET_RULES", "PROTOCOL_POCKET", "protocol_pocket", "pocket_protocol", "pocket_description",
    "pocket_mask", "residue_keys", "residue_ligand_distance", "data_pocket", "add_ligand", "pocket_residues",
    "complex_neighbourhoods",
    "LBAFeaturized", "featurize_complexes",
    "parse_elements", "model_data_attrs", "resolve_transform", "transform_mismatches", "adds_other_channel",
    "check_against_model",
    "write_lba_dataset", "read_lba_dataset", "write_skipped",
    "PreparedLBA", "prepare_lba", "select_complexes", "resolve_receptor",
    "build_split", "SET_NAMES", "read_split", "FoldRows", "AlignedSplit", "align_split",
]
