"""Reading and checking the per-variant JSON files written by ``holovae evaluate``."""
from __future__ import annotations

import json
from pathlib import Path

# Values the table builders branch on; anything else is a typo that would silently drop a row.
ALLOWED = {
    "split": {"NR/R", "R/R"},
    "model": {"H-AE", "H-VAE"},
    "decoder": {"equivariant", "mlp"},
    "tp": {"efficient", "full"},
}


# Datasets whose evals have no train/test rotation "split" (``holovae evaluate --meta`` gives
# none): protein neighbourhoods are used as they come, in their native orientation.
NO_SPLIT_DATASETS = {"protein nbs", "amino acids", "lba"}


def dataset_key(ev) -> str:
    """The eval's dataset name, normalised for comparisons ('Protein NBs' -> 'protein nbs')."""
    return " ".join(str(ev.get("dataset", "")).split()).lower() if isinstance(ev, dict) else ""


def has_split(ev) -> bool:
    """Whether evals of ``ev``'s dataset carry a ``split`` (MNIST and Shrec17 do, proteins do not)."""
    return dataset_key(ev) not in NO_SPLIT_DATASETS


def is_amino_acid(ev) -> bool:
    """An eval of an amino-acid-conformation model (dataset "Amino acids")."""
    return dataset_key(ev) == "amino acids"


def is_lba(ev) -> bool:
    """An eval of the ligand-binding-affinity regression (``holovae lba-regress``, dataset "LBA")."""
    return dataset_key(ev) == "lba"


def is_protein(ev) -> bool:
    """An eval of a protein-neighbourhood model (dataset "Protein NBs")."""
    return dataset_key(ev) == "protein nbs"


def check_eval(ev, keys, where: str, table: str) -> None:
    """Raise ValueError naming ``where`` if ``ev`` lacks one of ``keys`` or has an unknown value.

    ``split`` is neither required nor checked for datasets without one (:func:`has_split`:
    protein neighbourhoods); for the others a missing or unknown split is an error.
    """
    if not isinstance(ev, dict):
        raise ValueError(f"{where}: an eval must be a JSON object, got {type(ev).__name__}")
    if not has_split(ev):
        keys = tuple(k for k in keys if k != "split")
    missing = [k for k in keys if k not in ev]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(repr(k) for k in missing)} "
                         f"needed by table {table}")
    for key, allowed in ALLOWED.items():
        if key in keys and ev[key] not in allowed:
            raise ValueError(f"{where}: {key}={ev[key]!r} is not one of {sorted(allowed)}")


def check_evals(evals, keys, table: str) -> None:
    """:func:`check_eval` on each eval, naming it by its variant (or position)."""
    for i, ev in enumerate(evals):
        name = ev.get("variant", f"#{i}") if isinstance(ev, dict) else f"#{i}"
        check_eval(ev, keys, f"eval {name!r}", table)


def load_eval(path, keys=(), table: str = "") -> dict:
    """Read one eval JSON; ValueError naming the file if it is not an object or lacks ``keys``."""
    path = Path(path)
    try:
        ev = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    check_eval(ev, keys, str(path), table)
    return ev


def int_list(value) -> tuple[int, ...] | None:
    """Channel/degree lists as int tuples, whether a JSON list or the paper's '[16,16]' text."""
    if value is None:
        return None
    if isinstance(value, str):
        inner = value.strip().strip("[]")
        return tuple(int(v) for v in inner.split(",") if v.strip())
    return tuple(int(v) for v in value)


def list_text(value) -> str:
    """Compact '[16,16,16]' form of a channel/degree list, as the paper writes them."""
    ints = int_list(value)
    return "" if ints is None else "[" + ",".join(str(v) for v in ints) + "]"
