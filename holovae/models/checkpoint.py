"""The model file: what ``holovae train`` and ``holovae import-checkpoint`` write and every
command that uses a model reads.

A model file is one ``torch.save`` of a dict:

* ``config``: :meth:`HVAEConfig.to_dict` (the architecture), ``state_dict``: the weights (the
  normalising constant ``input_scale`` included);
* ``data_attrs`` (optional): the transform of the data the model was trained on, i.e. the
  attributes of its training HDF5 without their provenance (:func:`data_extra`): what new inputs
  must be transformed with (:func:`model_transform`; ``holovae embed-structures``,
  ``prepare-lba --model``, ``lba-regress --features hae``);
* whatever else the writer adds: ``epoch``, ``step``, ``val`` (``holovae train``: the best
  state), ``pretrained`` (``holovae import-checkpoint``: where the weights came from).

Files are written atomically (:func:`save_checkpoint`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch

from ..atomic import atomic_path
from .hvae import HVAE, HVAEConfig

__all__ = ["save_checkpoint", "load_checkpoint", "read_model_file", "save_model", "load_model", "data_extra",
           "model_transform", "DATA_ATTRS", "PROVENANCE_ATTRS"]

DATA_ATTRS = "data_attrs"
# Attributes of a training file that say where it came from, not how it was transformed.
PROVENANCE_ATTRS = ("source_sha256", "concatenated_from")


def save_checkpoint(obj, path) -> Path:
    """``torch.save(obj)`` to ``path``, atomically (a model file, or ``holovae train``'s resume
    checkpoint)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path, device: str | torch.device = "cpu"):
    """What :func:`save_checkpoint` wrote, tensors on ``device`` (no checks: the caller's)."""
    return torch.load(path, map_location=device, weights_only=False)


def read_model_file(path, device: str | torch.device = "cpu") -> dict:
    """The dict of a model file. ``FileNotFoundError`` when there is none, ``ValueError`` naming
    the file when it does not load or has no ``config`` entry."""
    try:
        ckpt = load_checkpoint(path, device)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a holovae model file ({exc})") from exc
    if not isinstance(ckpt, dict) or "config" not in ckpt:
        raise ValueError(f"{path}: not a holovae model file (no 'config' entry)")
    return ckpt


def save_model(model: HVAE, path, extra: Optional[dict] = None) -> None:
    """Write a self-describing model file (config + weights + normalising constant, and
    ``extra``), atomically."""
    save_checkpoint({"config": model.config.to_dict(), "state_dict": model.state_dict(), **(extra or {})}, path)


def load_model(path, device: str | torch.device = "cpu") -> HVAE:
    """The model of a file written by :func:`save_model`, in eval mode on ``device``."""
    ckpt = read_model_file(path, device)
    model = HVAE(HVAEConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"] if "state_dict" in ckpt else ckpt["model"])
    return model.to(device).eval()


def data_extra(attrs: Mapping) -> dict:
    """The ``extra`` entry of :func:`save_model` recording the transform of a model's training
    data, from that data's attributes (``{"data_attrs": attrs without their provenance}``)."""
    return {DATA_ATTRS: {k: v for k, v in attrs.items() if k not in PROVENANCE_ATTRS}}


def model_transform(path, kinds: Sequence[str], what: str) -> dict:
    """Which transform the model at ``path`` expects: the ``data_attrs`` stored with it (the
    transform parameters of its training data, :func:`~holovae.data.featurize.transform_attrs`),
    with the model's ``irreps_in`` added. ``ValueError`` naming the file when it stores none or
    its data is not of one of ``kinds`` (``what`` names those in the message, e.g.
    "residue-neighbourhood model")."""
    ckpt = read_model_file(path)
    attrs = ckpt.get(DATA_ATTRS)
    if not attrs or attrs.get("kind") not in kinds:
        why = f"data kind {attrs.get('kind')!r}" if attrs else "no transform parameters stored"
        raise ValueError(f"{path}: not a {what} ({why}; train it with `holovae train` on "
                         "`holovae prepare-structures` data)")
    config = ckpt["config"]
    if not isinstance(config, dict) or "irreps_in" not in config:
        raise ValueError(f"{path}: not a holovae model file (no 'config' with 'irreps_in')")
    return {**attrs, "irreps_in": config["irreps_in"]}
