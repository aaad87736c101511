"""The transform of LBA pocket data: explicit options, or the one a model's training data had
(so that the model can embed the pockets), optionally with one more channel for the elements
the model's channels leave out.

:func:`resolve_transform` turns options (and a model's stored ``data_attrs``,
:func:`holovae.models.checkpoint.model_transform`) into the keyword arguments of
:func:`~holovae.data.lba.featurize.featurize_complexes`; :func:`transform_mismatches` says on
which parameters two datasets' transforms disagree.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from .featurize import KIND

__all__ = ["TRANSFORM_DEFAULTS", "TRANSFORM_KEYS", "NEIGHBOURHOOD_KINDS", "parse_elements", "model_data_attrs",
           "resolve_transform", "transform_mismatches", "adds_other_channel", "check_against_model"]

# Transform options with their defaults. The CLI's defaults are None, so that an option the
# user gave can be told apart from one to be filled in (from the model, or from these).
TRANSFORM_DEFAULTS = {"lmax": 6, "n_max": 20, "r_max": 10.0, "elements": "C,N,O,S",
                      "normalization": "none", "radial": "orthonormal"}
# The transform parameters that must agree between a model's training data and data it embeds.
TRANSFORM_KEYS = ("lmax", "n_max", "r_max", "elements", "other_channel", "n_channels", "normalization",
                  "radial", "centre", "central_ca_dropped")
NEIGHBOURHOOD_KINDS = ("protein_neighbourhoods", KIND)


def parse_elements(text: str) -> list[str]:
    """``"C,n, O"`` -> ``["C", "N", "O"]``."""
    return [e.strip().upper() for e in text.split(",") if e.strip()]


def model_data_attrs(model_path) -> dict:
    """The transform a residue-neighbourhood model expects (its training data's parameters, with
    its ``irreps_in``); ``ValueError`` naming the file for any other model."""
    from ...models.checkpoint import model_transform

    return model_transform(model_path, NEIGHBOURHOOD_KINDS, "residue-neighbourhood model")


def _normalization_option(value) -> str:
    """The CLI spelling of a stored normalisation (``None`` is written ``"none"``)."""
    return "none" if value is None else str(value)


def _show(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def resolve_transform(model_attrs: Optional[Mapping] = None, model=None, *, lmax: Optional[int] = None,
                      n_max: Optional[int] = None, r_max: Optional[float] = None,
                      elements: Optional[Sequence[str]] = None, other_channel: bool = False,
                      normalization: Optional[str] = None, radial: Optional[str] = None) -> dict:
    """The keyword arguments of the transform (``lmax, n_max, r_max, elements, other_channel,
    normalization, radial``, plus ``keep_hetero``) from the options given (``None``: not given).

    Without ``model_attrs``: the options, :data:`TRANSFORM_DEFAULTS` for those not given. With
    ``model_attrs`` (:func:`model_data_attrs` of the model file ``model``): the model's transform;
    an option given must agree with it (a ``ValueError`` lists every one that does not), except
    ``other_channel``, which adds the "other element" channel to a model's channels that lack
    it (the Zernike-invariant baseline of Table S10; such data is for the invariants, not for
    the model, which has no weights for the extra channel).
    """
    given = {"lmax": lmax, "n_max": n_max, "r_max": r_max,
             "elements": None if elements is None else [str(e).strip().upper() for e in elements],
             "normalization": normalization, "radial": radial}
    if model_attrs is None:
        out = {k: v if v is not None else TRANSFORM_DEFAULTS[k] for k, v in given.items()}
        if given["elements"] is None:
            out["elements"] = parse_elements(TRANSFORM_DEFAULTS["elements"])
        out["other_channel"], out["keep_hetero"] = bool(other_channel), True
    else:
        from_model = {"lmax": int(model_attrs["lmax"]), "n_max": int(model_attrs["n_max"]),
                      "r_max": float(model_attrs["r_max"]), "elements": [str(e).upper() for e in model_attrs["elements"]],
                      "normalization": _normalization_option(model_attrs["normalization"]),
                      "radial": str(model_attrs["radial"])}
        conflicts = [f"--{k.replace('_', '-')} {_show(v)} (the model's data has {_show(from_model[k])})"
                     for k, v in given.items() if v is not None and v != from_model[k]]
        if conflicts:
            raise ValueError(f"{model}: options conflict with the model's training data: {'; '.join(conflicts)}. "
                             "Leave them out to use the model's transform")
        out = dict(from_model, other_channel=bool(model_attrs.get("other_channel", False)) or bool(other_channel),
                   keep_hetero=bool(model_attrs.get("keep_hetero", True)))
    if out["normalization"] not in ("none", "square"):
        raise ValueError(f"unsupported normalization {out['normalization']!r}")
    out["normalization"] = None if out["normalization"] == "none" else out["normalization"]
    if not out["elements"]:
        raise ValueError("--elements names no element")
    return out


def transform_mismatches(data_attrs: Mapping, model_attrs: Mapping) -> list:
    """The transform parameters (:data:`TRANSFORM_KEYS`, and the kind of cloud) on which two
    datasets' attributes disagree, as ``"key: data=..., model=..."`` strings; empty when a model
    trained on one can embed the other (e.g. protein neighbourhoods -> LBA pockets)."""
    out = [f"{k}: data={data_attrs.get(k)!r}, model={model_attrs.get(k)!r}"
           for k in TRANSFORM_KEYS if data_attrs.get(k) != model_attrs.get(k)]
    # protein and pocket neighbourhoods are the same kind of cloud; a residue's own atoms are not
    clouds = lambda kind: "neighbourhood" if kind in NEIGHBOURHOOD_KINDS else kind  # noqa: E731
    if clouds(data_attrs.get("kind")) != clouds(model_attrs.get("kind")):
        out.insert(0, f"kind: data={data_attrs.get('kind')!r}, model={model_attrs.get('kind')!r}")
    return out


def adds_other_channel(data_attrs: Mapping, model_attrs: Mapping) -> bool:
    """Whether data prepared with a model's transform has the "other element" channel the model lacks."""
    return bool(data_attrs.get("other_channel")) and not model_attrs.get("other_channel")


def check_against_model(data_attrs: Mapping, data_irreps, model_attrs: Mapping, model_path) -> None:
    """Data prepared with the transform of the model at ``model_path`` must be what the model can
    embed (or, with the channel added by ``other_channel``, exactly that plus the channel): a
    mismatch here is a bug, not a user error (``RuntimeError``)."""
    from holovae._e3nn import o3

    added = adds_other_channel(data_attrs, model_attrs)
    expected = (dict(model_attrs, other_channel=True, n_channels=len(model_attrs["elements"]) + 1) if added
                else model_attrs)
    mismatches = transform_mismatches(data_attrs, expected)
    if mismatches:
        raise RuntimeError(f"{model_path}: the pocket data came out with another transform: {'; '.join(mismatches)}")
    if not added and o3.Irreps(data_irreps).simplify() != o3.Irreps(model_attrs["irreps_in"]).simplify():
        raise RuntimeError(f"{model_path}: model irreps {model_attrs['irreps_in']} differ from the data's {data_irreps}")
