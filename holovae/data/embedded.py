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
