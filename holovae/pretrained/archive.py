"""Reading an authors' model folder (``hparams.json`` + a ``state_dict``) from a tarball or a
directory, without extracting anything to disk.

The layout (inferred from the authors' code, see :mod:`holovae.pretrained`): a folder holding
``hparams.json`` and the weights file, ``lowest_total_loss_with_final_kl_model.pt`` unless told
otherwise. The folder may sit at any depth of the archive (``<id>/``, ``runs/<id>/``, ``./<id>/``).
Archive members are read in memory, so member names (absolute paths, ``..``) never touch the
filesystem, and the weights are loaded with ``torch.load(weights_only=True)``: a downloaded file
cannot run code.
"""
from __future__ import annotations

import io
import json
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import HPARAMS_FILE, WEIGHTS_FILE


@dataclass
class AuthorsCheckpoint:
    """``hparams`` (the authors' ``hparams.json``), ``state_dict`` (name -> float tensor) and
    where they came from: ``source`` (the archive or directory) and ``folder`` inside it."""
    hparams: dict
    state_dict: dict
    source: str
    folder: str
    weights_file: str


def _pick_folder(source, folders: list, weights_present: dict, model_id: Optional[str], weights: str) -> str:
    if not folders:
        raise ValueError(f"{source}: no {HPARAMS_FILE} in it: not an authors' model archive (expected a folder "
                         f"<model id>/ with {HPARAMS_FILE} and {weights})")
    if model_id is not None:
        named = [f for f in folders if posixpath.basename(f.rstrip("/")) == model_id]
        if named:
            folders = named
        elif len(folders) > 1:
            raise ValueError(f"{source}: no folder named {model_id!r}; model folders: {', '.join(folders)}")
    with_weights = [f for f in folders if weights in weights_present[f]]
    if len(with_weights) > 1:
        raise ValueError(f"{source}: several model folders ({', '.join(with_weights)}): name one with --model-id")
    if not with_weights:
        f = folders[0]
        others = ", ".join(sorted(weights_present[f])) or "none"
        raise ValueError(f"{source}: folder {f or '.'} has {HPARAMS_FILE} but no {weights} (weights files there: "
                         f"{others}; choose one with --weights)")
    return with_weights[0]


def _load_state_dict(data: bytes, where: str) -> dict:
    import torch

    try:
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{where}: not a PyTorch state_dict that loads without running code ({exc})") from None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{where}: expected a state_dict (a mapping of names to tensors), got {type(sd).__name__}")
    return dict(sd)


def _load_hparams(data: bytes, where: str) -> dict:
    try:
        hp = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(hp, dict) or not isinstance(hp.get("model_hparams"), dict):
        raise ValueError(f"{where}: not the authors' hparams (no 'model_hparams' mapping)")
    return hp


def read_checkpoint(source, model_id: Optional[str] = None, weights: str = WEIGHTS_FILE) -> AuthorsCheckpoint:
    """The authors' model in ``source``: a tarball (any compression ``tarfile`` reads) or a
    directory (e.g. what their download script leaves after extracting). ``model_id`` picks the
    folder of that name when there are several. Raises ``ValueError``/``FileNotFoundError``
    naming ``source`` and what is missing."""
    source = Path(source)
    if source.is_dir():
        hp_files = sorted(source.rglob(HPARAMS_FILE))
        folders = [str(p.parent.relative_to(source).as_posix()) for p in hp_files]
        present = {f: {p.name for p in (source / f).glob("*.pt")} for f in folders}
        folder = _pick_folder(source, folders, present, model_id, weights)
        base = source / folder
        return AuthorsCheckpoint(_load_hparams((base / HPARAMS_FILE).read_bytes(), str(base / HPARAMS_FILE)),
                                 _load_state_dict((base / weights).read_bytes(), str(base / weights)),
                                 str(source), folder, weights)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or directory")
    if not tarfile.is_tarfile(source):
        raise ValueError(f"{source}: neither a directory nor a tar archive")
    try:
        with tarfile.open(source) as tar:
            members = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}
            folders = sorted({posixpath.dirname(n) for n in members if posixpath.basename(n) == HPARAMS_FILE})
            present = {f: {posixpath.basename(n) for n in members
                           if posixpath.dirname(n) == f and n.endswith(".pt")} for f in folders}
            folder = _pick_folder(source, folders, present, model_id, weights)

            def read(name):
                return tar.extractfile(members[posixpath.join(folder, name) if folder else name]).read()

            hparams = _load_hparams(read(HPARAMS_FILE), f"{source}:{posixpath.join(folder, HPARAMS_FILE)}")
            state = _load_state_dict(read(weights), f"{source}:{posixpath.join(folder, weights)}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{source}: unreadable tar archive ({type(exc).__name__}: {exc})") from None
    return AuthorsCheckpoint(hparams, state, str(source), folder, weights)
