"""The words of an LBA split: the caption sentence of its tables and the JSON of its identity check."""
from __future__ import annotations

import math

from .folds import SET_NAMES

__all__ = ["identity_caption", "lists_caption", "identity_check_json"]

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


def identity_check_json(check) -> dict:
    """A :class:`~holovae.data.sequence_split.CrossSetIdentity` as JSON (``null`` for what is
    undefined when no significant alignment reaches the floor)."""
    significant = not math.isnan(check.max_identity)
    return {"max_identity": float(check.max_identity) if significant else None,
            "pair": [check.id_a, check.id_b] if significant else None,
            "sets": [check.set_a, check.set_b] if significant else None,
            "z_score": float(check.z_score) if significant and math.isfinite(check.z_score) else None,
            "max_unfiltered": float(check.max_unfiltered), "floor": float(check.floor), "caption": check.caption()}
