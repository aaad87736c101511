"""The authors' published protein-neighbourhood models, as holovae models.

Visani et al. released two trained H-AE encoders of 10 Å protein neighbourhoods (their
``experiments/protein_neighborhoods/download_pretrained_models.py``, gvisani/Holographic-VAE at
commit 728b67c). :data:`PUBLISHED` lists them; ``holovae import-checkpoint`` downloads one
(:mod:`holovae.download`, its sha256 pinned in a lock file at the first download, since none is
published), reads it (:mod:`.archive`) and converts it (:mod:`.convert`) into an ordinary holovae
model file that ``embed-structures``, ``prepare-lba --model`` and ``lba-regress --features hae``
use unchanged.

This module imports nothing heavy (no torch): the Snakemake DAG reads :func:`spec` from it.

The archive layout, inferred from the authors' code (their tarballs could not be opened here):
a folder ``<model id>/`` holding ``hparams.json`` (their config, with
``model_hparams.input_normalizing_constant`` written by their training) and the weights
``lowest_total_loss_with_final_kl_model.pt`` (a ``state_dict``, the default ``model_name`` of
their inference), possibly with more files. :mod:`.archive` accepts that folder at any depth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["Published", "PUBLISHED", "WEIGHTS_FILE", "HPARAMS_FILE", "PretrainedSpec", "spec"]

# file names inside a model folder (their training writes both; their inference reads both)
HPARAMS_FILE = "hparams.json"
WEIGHTS_FILE = "lowest_total_loss_with_final_kl_model.pt"


@dataclass(frozen=True)
class Published:
    """One published model: download ``urls`` (mirrors, tried in order) and what its name says
    of it (``lmax``, ``latent_dim``); the transform is read from its ``hparams.json``."""
    urls: tuple
    lmax: int
    latent_dim: int
    note: str = ""


# The figshare file of each model, by its documented download address and by figshare's
# ndownloader host (the same file id); no checksum is published.
PUBLISHED = {
    "HAE-z=128-lmax=6-rst_norm=square": Published(
        urls=("https://figshare.com/ndownloader/files/40710101",
              "https://ndownloader.figshare.com/files/40710101"),
        lmax=6, latent_dim=128,
        note="the authors' protein config (ETP, channels [60,60,60,90,128,128], degrees [6,6,6,4,2,1])"),
    "HAE-z=256-lmax=6-ls_rule=full-rst_norm=square": Published(
        urls=("https://figshare.com/ndownloader/files/41791344",
              "https://ndownloader.figshare.com/files/41791344"),
        lmax=6, latent_dim=256,
        note="every degree pair in the tensor product (ls_nonlin_rule: full); channels not published"),
}


@dataclass(frozen=True)
class PretrainedSpec:
    """What the config key ``proteins.pretrained`` asks for: a model ``id`` (the folder name in
    the archive), the ``urls`` to download it from, an optional ``sha256`` and, where known,
    the ``lmax`` of its data (needed only to embed the protein splits with it)."""
    id: str
    urls: tuple
    sha256: Optional[str] = None
    lmax: Optional[int] = None
    published: bool = field(default=False)


def spec(value) -> Optional[PretrainedSpec]:
    """The config value ``proteins.pretrained`` -> :class:`PretrainedSpec` (``None`` for null).

    ``value`` is a published model id (:data:`PUBLISHED`) or a mapping ``{id, urls, sha256,
    lmax}``: another mirror of a published model, or any archive in the published layout
    (``urls`` then required). Raises ``ValueError`` naming the key for anything else.
    """
    if value is None:
        return None
    key = "config proteins.pretrained"
    if isinstance(value, str):
        value = {"id": value}
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise ValueError(f"{key}: expected a published model id ({', '.join(PUBLISHED)}) or {{id, urls}}, "
                         f"got {value!r}")
    unknown = set(value) - {"id", "urls", "sha256", "lmax"}
    if unknown:
        raise ValueError(f"{key}: unknown keys {sorted(unknown)} (known: id, urls, sha256, lmax)")
    known = PUBLISHED.get(value["id"])
    urls = value.get("urls") or (known.urls if known else None)
    if not urls:
        raise ValueError(f"{key}: {value['id']!r} is not a published model ({', '.join(PUBLISHED)}): give its urls")
    if isinstance(urls, str):
        urls = [urls]
    lmax = value.get("lmax", known.lmax if known else None)
    return PretrainedSpec(id=value["id"], urls=tuple(str(u) for u in urls), sha256=value.get("sha256") or None,
                          lmax=None if lmax is None else int(lmax), published=known is not None)
