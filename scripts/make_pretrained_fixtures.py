"""Build tests/fixtures/pretrained with the authors' own code (gvisani/Holographic-VAE, commit
728b67c), which is never vendored: fetch it yourself and put it on PYTHONPATH.

    git clone https://github.com/gvisani/Holographic-VAE /somewhere/authors
    git -C /somewhere/authors checkout 728b67c
    PYTHONPATH=/somewhere/authors:. python scripts/make_pretrained_fixtures.py

(run from the holovae checkout; the authors' code writes ``cg_coefficients/`` into the working
directory, so the script moves to a temporary one first). What it writes, and why, is in
tests/fixtures/pretrained/PROVENANCE.md.

1. Real neighbourhoods: holovae parses an embedded structure and cuts its 10 Å Cα
   neighbourhoods; the atoms of a few residues go through the authors' Zernike transform
   (their ``get_zernikegram_of_neighborhood``, radial functions, e3nn spherical harmonics and
   channel layout), with 'square' normalisation and without.
2. For each model (the published HAE-z=128 architecture, a z=256 model with their 'full'
   tensor-product rule, and a tiny one for the workflow test): their ``H_VAE`` with weights
   from tests/pretrained_fixtures.py's generator (sha256 of every tensor recorded), eval mode,
   input normalised at run time as their inference does; z_mean, z_log_var, the learned frame
   and ``decode(z_mean, frame)`` are stored.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from pretrained_fixtures import FIXTURES, sha256_array, tensor_values  # noqa: E402

STRUCTURE = "7loe.cif.gz"
N_RESIDUES = 8
SEED = 20240402
# the authors' protein config (experiments/protein_neighborhoods/config.yaml): data keys
DATA = {"rcut": 10.0, "lmax": 6, "rmax": 20, "channels": ["C", "N", "O", "S"], "backbone_only": False,
        "rst_normalization": "square", "collected_lmax": 6, "get_psysicochemical_info_for_hydrogens": False,
        "normalize_input": True}


def authors_config() -> dict:
    import yaml

    return yaml.safe_load((authors_root() / "experiments/protein_neighborhoods/config.yaml").read_text())


def authors_root() -> Path:
    import holographic_vae   # a namespace package: no __file__

    return Path(list(holographic_vae.__path__)[0]).resolve().parent


def models(base: dict) -> dict:
    """name -> (model id, hparams): their config's model, the z=256 'full' rule model, a tiny one."""
    z128 = copy.deepcopy(base)
    z256 = copy.deepcopy(base)
    z256["model_hparams"].update(latent_dim=256, ch_size_list=[90, 90, 90, 120, 200, 256],
                                 ls_nonlin_rule_list=["full"] * 6, is_vae=False)
    tiny = copy.deepcopy(base)
    tiny["model_hparams"].update(latent_dim=8, ch_size_list=[8, 8, 8], lmax_list=[4, 2, 1],
                                 ls_nonlin_rule_list=["efficient"] * 3, ch_nonlin_rule_list=["elementwise"] * 3,
                                 ch_initial_linear_projection=8, is_vae=False)
    return {"z128": ("HAE-z=128-lmax=6-rst_norm=square", z128),
            "z256_full": ("HAE-z=256-lmax=6-ls_rule=full-rst_norm=square", z256),
            "tiny": ("tiny-test-model", tiny)}


def neighbourhood_inputs():
    """holovae's neighbourhoods of N_RESIDUES residues -> the authors' coefficients."""
    from experiments.protein_neighborhoods.src.preprocessing.get_zernikegrams import get_zernikegram_of_neighborhood
    from holographic_vae.so3 import MultiChannelRadialSphericalTensor, RadialSphericalTensor, ZernickeRadialFunctions

    from holovae.data.neighbourhoods import neighbourhoods, residue_ids
    from holovae.data.structures import parse_structure

    s = parse_structure(REPO / "holovae/data/embedded/structures" / STRUCTURE, keep_hetero=True)
    c = neighbourhoods(s, r_max=DATA["rcut"], elements=DATA["channels"])
    pick = np.unique(np.linspace(0, len(c) - 1, N_RESIDUES).round().astype(int))
    rst = RadialSphericalTensor(DATA["rmax"] + 1, ZernickeRadialFunctions(DATA["rcut"], DATA["rmax"] + 1, DATA["lmax"],
                                                                          complex_sph=False), DATA["lmax"], 1, 1)
    mrst = MultiChannelRadialSphericalTensor(rst, len(DATA["channels"]))
    out = {"square": [], "none": []}
    for b in pick:
        o0, o1 = c.offsets[b], c.offsets[b + 1]
        nb = {"coords": c.points[o0:o1].astype(np.float64)}
        masks = [c.channels[o0:o1] == k for k in range(len(DATA["channels"]))]
        weights = [np.ones(int(m.sum())) for m in masks]
        for key, norm in (("square", "square"), ("none", None)):
            out[key].append(get_zernikegram_of_neighborhood(nb, masks, weights, rst, mrst, rst_normalization=norm))
    ids = np.array(residue_ids(s, c.residue[pick]), dtype=object)
    return (ids, np.stack(out["square"]).astype(np.float32), np.stack(out["none"]).astype(np.float32),
            np.array([int(c.offsets[b + 1] - c.offsets[b]) for b in pick]))


def run_model(name, hparams, x_flat, w3j, irreps):
    import torch

    from holographic_vae.models import H_VAE
    from holographic_vae.so3.functional import make_dict

    model = H_VAE(irreps, w3j, hparams["model_hparams"], "cpu", normalize_input_at_runtime=True)
    sd = model.state_dict()
    spec = []
    for key, t in sd.items():
        v = tensor_values(key, t.shape, SEED)
        sd[key] = torch.from_numpy(v)
        spec.append([key, list(t.shape), sha256_array(v)])
    model.load_state_dict(sd)
    model.eval()
    with torch.no_grad():
        (z_mean, z_log_var), frame = model.encode(make_dict(torch.from_numpy(x_flat), irreps))
        x_rec = model.decode(z_mean, frame)
        x_rec_flat = torch.cat([x_rec[l].reshape(len(x_flat), -1) for l in sorted(x_rec)], dim=1)
    out = {"z_mean": z_mean.numpy(), "frame": frame.numpy(), "x_rec": x_rec_flat.numpy()}
    if hparams["model_hparams"]["is_vae"]:
        out["z_log_var"] = z_log_var.numpy()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params:,} parameters", file=sys.stderr)
    return {"seed": SEED, "n_parameters": n_params, "tensors": spec}, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(FIXTURES), help="fixture folder")
    args = p.parse_args()
    out = Path(args.out).resolve()
    try:
        import holographic_vae  # noqa: F401
    except ImportError:
        sys.exit("the authors' code is not importable: put their repository on PYTHONPATH (see the docstring)")
    import torch
    from e3nn import o3
    from holographic_vae.cg_coefficients import get_w3j_coefficients
    from holographic_vae.so3 import MultiChannelRadialSphericalTensor, RadialSphericalTensor, ZernickeRadialFunctions

    torch.set_num_threads(1)
    scratch = Path(tempfile.gettempdir()) / "holovae_authors_cwd"     # their w3j cache: cwd/cg_coefficients
    scratch.mkdir(exist_ok=True)
    os.chdir(scratch)
    w3j = {k: torch.tensor(v).float() for k, v in get_w3j_coefficients().items()}
    rst = RadialSphericalTensor(DATA["rmax"] + 1, ZernickeRadialFunctions(DATA["rcut"], DATA["rmax"] + 1, DATA["lmax"],
                                                                          complex_sph=False), DATA["lmax"], 1, 1)
    irreps = o3.Irreps(str(MultiChannelRadialSphericalTensor(rst, len(DATA["channels"]))))

    ids, x_square, x_none, n_atoms = neighbourhood_inputs()
    # a realistic normalising constant: their formula (get_norm_factor: the mean over samples of
    # sqrt(sum_f x_f^2 / (2 l_f + 1))), written out because theirs fails below 2000 samples
    ls = np.concatenate([np.full(mul * (2 * ir.l + 1), ir.l) for mul, ir in irreps])
    constant = float(np.mean(np.sqrt((x_square.astype(np.float64) ** 2 / (2 * ls + 1)).sum(1))))
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "inputs.npz", structure=np.array(STRUCTURE), ids=ids.astype(str), n_atoms=n_atoms,
                        coefficients_square=x_square, coefficients_none=x_none, irreps=np.array(str(irreps)))
    base = authors_config()
    base.update(DATA)
    summary = {}
    for name, (model_id, hp) in models(base).items():
        hp["model_hparams"]["input_normalizing_constant"] = constant
        spec, outputs = run_model(name, hp, x_square, w3j, irreps)
        d = out / name
        d.mkdir(exist_ok=True)
        spec["model_id"] = model_id
        (d / "hparams.json").write_text(json.dumps(hp, indent=4) + "\n")
        (d / "weights.json").write_text(json.dumps(spec) + "\n")
        np.savez_compressed(d / "outputs.npz", **outputs)
        summary[name] = spec["n_parameters"]
    commit = subprocess.run(["git", "-C", str(authors_root()), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    print(json.dumps({"authors_commit": commit, "normalizing_constant": constant, "parameters": summary,
                      "residues": list(ids), "atoms": n_atoms.tolist(), "sqrt_4pi": math.sqrt(4 * math.pi)},
                     indent=1))


if __name__ == "__main__":
    main()
