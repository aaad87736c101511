"""The folds of an LBA split JSON (``holovae lba-split``, :mod:`holovae.data.lba.split`): read,
checked, and mapped onto the complexes of an LBA data file."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SET_NAMES", "read_split", "FoldRows", "AlignedSplit", "align_split"]

log = logging.getLogger("holovae")

SET_NAMES = ("train", "val", "test")


def read_split(path) -> dict:
    """A ``holovae lba-split`` JSON, checked: ``kind`` "cv" or "fixed", a non-empty list of
    ``folds`` with id lists ``train``, ``val``, ``test`` that do not overlap within a fold, and,
    for "cv", test sets that do not overlap between folds (their predictions are pooled)."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such split file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a split JSON ({exc})") from None
    folds = split.get("folds") if isinstance(split, dict) else None
    if not isinstance(folds, list) or not folds or split.get("kind") not in ("cv", "fixed"):
        raise ValueError(f"{path}: not an `holovae lba-split` file (needs 'kind' cv/fixed and a list of 'folds')")
    tested: dict = {}
    for k, fold in enumerate(folds):
        if not isinstance(fold, dict) or any(not isinstance(fold.get(s), list) for s in SET_NAMES):
            raise ValueError(f"{path}: fold {k} lacks an id list 'train', 'val' or 'test'")
        sets = [set(map(str, fold[s])) for s in SET_NAMES]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise ValueError(f"{path}: fold {k} has ids in two of its sets")
        for i in sets[2]:
            if split["kind"] == "cv" and i in tested:
                raise ValueError(f"{path}: {i} is in the test sets of folds {tested[i]} and {k}")
            tested[i] = k
    return split


@dataclass
class FoldRows:
    """One fold as row indices into the per-complex arrays of the data (``train``, ``val``,
    ``test``: int64, in the split's order)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class AlignedSplit:
    """The split's folds over the complexes of the data, ``dropped`` ({id: reason}) the split's
    complexes that the data does not have."""

    folds: list[FoldRows]
    dropped: dict = field(default_factory=dict)

    @property
    def complexes(self) -> np.ndarray:
        """Indices of every complex used (in any set of any fold), sorted."""
        return np.unique(np.concatenate([np.concatenate([f.train, f.val, f.test]) for f in self.folds]))


def align_split(split: dict, split_path, complex_ids, skipped: list, data_path, allow_missing: bool) -> AlignedSplit:
    """Map the split's ids to the data's complexes. A complex skipped when the data was
    prepared (listed in the data's ``skipped``) is dropped with a warning; an id the data never
    saw means split and data come from different complex sets, an error unless
    ``allow_missing``. Every set of every fold must keep at least one complex."""
    index = {str(c).lower(): k for k, c in enumerate(complex_ids)}
    skip_reason = {str(pid).lower(): reason for pid, reason in skipped}
    named = sorted({str(i).lower() for fold in split["folds"] for s in SET_NAMES for i in fold[s]})
    absent = [i for i in named if i not in index]
    unknown = [i for i in absent if i not in skip_reason]
    if unknown and not allow_missing:
        raise ValueError(f"{split_path} names {len(unknown)} complex(es) that {data_path} neither holds nor lists as "
                         f"skipped: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} (split and data "
                         "made from different complexes? --allow-missing drops them)")
    dropped = {i: skip_reason.get(i, f"not in {data_path}") for i in absent}
    if dropped:
        log.warning("%d of the %d complexes of %s are not in %s and are dropped: %s", len(dropped), len(named),
                    split_path, data_path, "; ".join(f"{i}: {r}" for i, r in list(dropped.items())[:5]))
    folds = []
    for k, fold in enumerate(split["folds"]):
        rows = {s: np.array([index[i] for i in map(str.lower, map(str, fold[s])) if i in index], dtype=np.int64)
                for s in SET_NAMES}
        empty = [s for s, r in rows.items() if len(r) == 0]
        if empty:
            raise ValueError(f"{split_path}: fold {k} has no complex of {data_path} left in its {'/'.join(empty)} "
                             f"set ({len(dropped)} of the split's complexes are missing from the data)")
        folds.append(FoldRows(**rows))
    return AlignedSplit(folds, dropped)
