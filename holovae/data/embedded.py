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
    """``holovae/data/embedded/lba``: 16 protein–ligand complexes in PDBbind layout
    (``<id>/<id>_protein.pdb[.gz]``, ``<id>_ligand.sdf``/``.mol2``) and ``affinities.csv``."""
    folder = Path(str(resources.files("holovae") / "data" / "embedded" / "lba"))
    if not (folder / "affinities.csv").is_file():
        raise FileNotFoundError(f"{folder}: no embedded LBA complexes (is the package installed with its data?)")
    return folder
