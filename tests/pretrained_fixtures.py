"""The fixtures of the authors' H_VAE under tests/fixtures/pretrained (see PROVENANCE.md there),
and a tarball in the published layout built from them.

The authors' weights are not stored: every tensor is regenerated from its name, shape and a
seed by a counter-based generator (splitmix64 in exact uint64 arithmetic, so the same numbers on
any platform and numpy version), and checked against the sha256 recorded when
scripts/make_pretrained_fixtures.py loaded those very tensors into the authors' model.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pretrained"
MODELS = ("z128", "z256_full", "tiny")
WEIGHTS_FILE = "lowest_total_loss_with_final_kl_model.pt"   # the authors' default model_name

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix_uniform(seed: int, n: int) -> np.ndarray:
    """``n`` float64 in [0, 1): splitmix64 of the counters seed + 1 ... seed + n."""
    z = (np.arange(1, n + 1, dtype=np.uint64) + np.uint64(seed)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def tensor_values(name: str, shape, seed: int) -> np.ndarray:
    """float32 values of the authors' tensor ``name``: xavier-uniform matrices, batch-norm
    running variances in [0.5, 1.5), norm weights 1 +- 0.2, everything else (biases, running
    means) +- 0.1 -- non-trivial batch-norm statistics, so the eval-mode path is tested."""
    shape = tuple(int(s) for s in shape)
    u = splitmix_uniform((seed * 1_000_003 + zlib.crc32(name.encode())) % 2 ** 63, int(np.prod(shape)))
    s = 2 * u - 1
    if len(shape) == 2:
        v = s * np.sqrt(6.0 / (shape[0] + shape[1]))
    elif name.endswith("running_var"):
        v = 0.5 + u
    elif name.endswith("layers.0.weight") or ".layers.2.weights." in name:
        v = 1 + 0.2 * s
    else:
        v = 0.1 * s
    return v.astype(np.float32).reshape(shape)


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


def load(name: str) -> dict:
    """``{"hparams", "weights" (spec), "outputs" (npz arrays)}`` of fixture model ``name``."""
    d = FIXTURES / name
    with np.load(d / "outputs.npz") as f:
        outputs = {k: f[k] for k in f.files}
    return {"hparams": json.loads((d / "hparams.json").read_text()),
            "weights": json.loads((d / "weights.json").read_text()), "outputs": outputs}


def inputs() -> dict:
    with np.load(FIXTURES / "inputs.npz") as f:
        return {k: f[k] for k in f.files}


def state_dict(spec: dict) -> dict:
    """The authors' state_dict of a fixture (torch tensors), each checked against its sha256."""
    import torch

    out = {}
    for name, shape, digest in spec["tensors"]:
        v = tensor_values(name, shape, spec["seed"])
        if sha256_array(v) != digest:
            raise AssertionError(f"regenerated {name} differs from the tensor the fixture was made with")
        out[name] = torch.from_numpy(v)
    return out


def published_tarball(path: Path, model_id: str, hparams: dict, sd: dict, extra: dict | None = None) -> Path:
    """A ``.tar.gz`` in the published layout: ``<model_id>/hparams.json`` and
    ``<model_id>/lowest_total_loss_with_final_kl_model.pt`` (a torch.save'd state_dict), plus
    ``extra`` files ``{name: bytes}`` in the same folder."""
    import torch

    buf = io.BytesIO()
    torch.save(sd, buf)
    files = {"hparams.json": json.dumps(hparams, indent=4).encode(), WEIGHTS_FILE: buf.getvalue(), **(extra or {})}
    with tarfile.open(path, "w:gz") as tar:
        for fname, data in files.items():
            info = tarfile.TarInfo(f"{model_id}/{fname}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
