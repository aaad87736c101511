"""Data shipped inside the package (see ``holovae/data/embedded/*/README.md``)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def embedded_structure_paths() -> list[Path]:
    """The ten wwPDB mmCIF files of ``holovae/data/embedded/structures`` (sorted by name)."""
    folder = Path(str(resources.files("holovae") / "data" / "embedded" / "structures"))
    paths = sorted(folder.glob("*.cif.gz"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no embedded structures (is the package installed with its data?)")
    return paths


def embedded_lba_directory() -> Path:
    """``holovae/data/embedded/lba``: 70 protein–ligand complexes in PDBbind layout
    (``<id>/<id>_pocket.pdb.gz`` cut to what 10 Å pocket neighbourhoods need,
    ``<id>_chains.fasta`` of the full protein, ``<id>_ligand.sdf.gz``/``.mol2.gz``) and
    ``affinities.csv`` (see its README.md)."""
    folder = Path(str(resources.files("holovae") / "data" / "embedded" / "lba"))
    if not (folder / "affinities.csv").is_file():
        raise FileNotFoundError(f"{folder}: no embedded LBA complexes (is the package installed with its data?)")
    return folder
