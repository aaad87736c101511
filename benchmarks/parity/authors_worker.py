"""One training run of the authors' code (gvisani/Holographic-VAE, checked out by the user).

    python authors_worker.py --authors PATH --task {mnist,protein} --run-dir DIR --scratch DIR

``DIR/hparams.json`` (written by run.py) is read by their
``experiments/<task>/src/training/hvae_training.py:hvae_training(DIR)``, which this worker
calls unchanged, in ``--scratch`` (their code caches ``cg_coefficients/`` in the working
directory). Glue, all of it here and none in their files:

* their ``training/__init__.py`` also imports the inference module (umap, and an inference
  path that reads ``model.is_conditional``, which their ``H_VAE`` lacks): the training module
  is loaded from its file, without the package ``__init__``;
* their MNIST loop calls ``H_VAE.forward(..., c=one_hot_label)``, which the ``H_VAE`` of the
  same commit does not accept (no conditioning): the module's ``H_VAE`` is replaced by a
  subclass whose ``forward`` drops ``c``. The subclass also records every training batch's
  (MSE, KL) -- read only;
* their protein ``get_norm_factor`` (``standardized_data_loading.py``) loops over full batches of
  2,000 rows and then reads the loop variable for the remainder, which is unbound below 2,000
  training rows (``UnboundLocalError``): below 2,000 rows it is replaced by the same formula over
  all rows (what their loop computes when the remainder is everything); from 2,000 rows theirs runs;
* ``torch.optim.Adam`` is replaced by a subclass that records the learning rate of every step;
* their script seeds only the data loader: ``torch.manual_seed(seed)`` is called first, so
  the model's initialisation and the VAE's sampling noise are seeded too.

Then their checkpoint ``lowest_total_loss_with_final_kl_model.pt`` is evaluated on their
validation set with z = the mean, as their ``hvae_inference`` does: ``recon.npz`` holds the
(normalised) data and reconstructions, ``result.json`` the per-batch, per-record and per-epoch
numbers.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

_FLOAT = r"(-?(?:nan|inf|\d+\.?\d*(?:[eE][-+]?\d+)?))"
# their print statements of one record (the "TRAIN:: " part goes to stderr)
_RECORD = re.compile(
    r"(\d+)/(\d+) - rec loss: {f} -- kl-div: {f} - total loss: {f} - Loss: {f} - VALID:: rec loss: {f} - "
    r"kl-div: {f} - total loss: {f} - Loss: {f} - Time \(s\): {f}".format(f=_FLOAT))


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s):
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self):
        for st in self.streams:
            st.flush()


def _load_training_module(authors: Path, task: str):
    folder = {"mnist": "mnist", "protein": "protein_neighborhoods"}[task]
    path = authors / "experiments" / folder / "src" / "training" / "hvae_training.py"
    spec = importlib.util.spec_from_file_location(f"authors_hvae_training_{task}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _make_adapter(H_VAE, batches: list):
    class ParityH_VAE(H_VAE):
        def forward(self, x, x_vec=None, frame=None, c=None):
            # c: the one-hot label their MNIST loop passes; this commit's H_VAE has no
            # conditioning and no such argument, so it is dropped (see the module docstring)
            out = super().forward(x, x_vec=x_vec, frame=frame)
            if self.training:
                batches.append((float(out[0].detach()), float(out[1].detach())))
            return out
    return ParityH_VAE


def _patch_norm_factor() -> None:
    import torch
    from experiments.protein_neighborhoods.src.utils.data import standardized_data_loading as sdl
    theirs = sdl.get_norm_factor

    def get_norm_factor(projections, data_irreps):
        if projections.shape[0] >= 2000:
            return theirs(projections, data_irreps)
        ls = torch.tensor(data_irreps.ls)
        ls_indices = torch.cat([ls[ls == l].repeat(2 * l + 1) for l in sorted(set(data_irreps.ls))]).type(torch.float)
        return torch.mean(torch.sqrt(torch.einsum("bf,bf,f->b", projections, projections,
                                                  1.0 / (2 * ls_indices + 1)))).item()
    sdl.get_norm_factor = get_norm_factor


def _make_adam(lrs: list):
    import torch

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)
    return RecordingAdam


def _parse_lists(stderr_text: str) -> list[list[float]]:
    """The Python lists their script prints to stderr (KL weights per epoch, then LRs)."""
    out = []
    for line in stderr_text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            line = re.sub(r"np\.float\d+\(([^)]*)\)", r"\1", line)
            out.append([float(v) for v in ast.literal_eval(line)])
    return out


def _parse_records(stdout_text: str) -> list[dict]:
    keys = ("train_rec", "train_kl", "train_total", "train_loss_final_kl",
            "val_rec", "val_kl", "val_total", "val_loss_final_kl", "seconds")
    recs = []
    for m in _RECORD.finditer(stdout_text):
        recs.append({"record": int(m.group(1)), "of": int(m.group(2)),
                     **{k: float(v) for k, v in zip(keys, m.groups()[2:])}})
    return recs


def _evaluate_selected(mod, task: str, run_dir: Path, hparams: dict, device: str = "cpu") -> dict:
    """Reconstruct their validation set with their selected checkpoint, z = mean."""
    import torch
    from holographic_vae.cg_coefficients import get_w3j_coefficients
    from holographic_vae.so3.functional import make_dict, make_vec
    if task == "mnist":
        from experiments.mnist.src.utils.data import load_data
        datasets, irreps = load_data(hparams, splits=["train", "valid"])
    else:
        from experiments.protein_neighborhoods.src.utils.data import load_data
        datasets, irreps, _ = load_data(hparams, splits=["train", "valid"])   # train: the normalising constant
    x = datasets["valid"].x.float()
    w3j = {k: torch.tensor(v).float() for k, v in get_w3j_coefficients().items()}
    model = mod.H_VAE(irreps, w3j, hparams["model_hparams"], device, normalize_input_at_runtime=False)
    model.load_state_dict(torch.load(run_dir / "lowest_total_loss_with_final_kl_model.pt", map_location=device))
    model.eval()
    recs, means, logvars = [], [], []
    with torch.no_grad():
        for s in range(0, len(x), 256):
            xb = x[s:s + 256]
            (z_mean, z_log_var), frame = model.encode(make_dict(xb, irreps))
            recs.append(make_vec(model.decode(z_mean, frame)))
            means.append(z_mean)
            logvars.append(z_log_var)
    return {"x": x.numpy(), "x_rec": torch.cat(recs).numpy(), "z_mean": torch.cat(means).numpy(),
            "z_log_var": torch.cat(logvars).numpy() if hparams["model_hparams"]["is_vae"] else None,
            "irreps": str(irreps)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", required=True, type=Path)
    ap.add_argument("--task", required=True, choices=["mnist", "protein"])
    ap.add_argument("--run-dir", required=True, type=Path)
    ap.add_argument("--scratch", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    authors, run_dir = args.authors.resolve(), args.run_dir.resolve()
    sys.path.insert(0, str(authors))
    os.chdir(args.scratch)
    hparams = json.loads((run_dir / "hparams.json").read_text())

    mod = _load_training_module(authors, args.task)
    batches, lrs = [], []
    mod.H_VAE = _make_adapter(mod.H_VAE, batches)
    torch.optim.Adam = _make_adam(lrs)
    if args.task == "protein":
        _patch_norm_factor()
    torch.manual_seed(hparams["seed"])

    out_buf, err_buf = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with open(run_dir / "authors_stdout.log", "w") as fo, open(run_dir / "authors_stderr.log", "w") as fe, \
            contextlib.redirect_stdout(_Tee(fo, out_buf)), contextlib.redirect_stderr(_Tee(fe, err_buf)):
        mod.hvae_training(str(run_dir))
    wall = time.perf_counter() - t0

    stdout_text, stderr_text = out_buf.getvalue(), err_buf.getvalue()
    lists = _parse_lists(stderr_text)
    n_epochs = hparams["n_epochs"]
    kl_per_epoch = lists[0] if hparams["lambdas_schedule"] == "linear_up_anneal_kl" else [hparams["lambdas"][1]] * n_epochs
    records = _parse_records(stdout_text)
    n_params = int(re.search(r"There are (\d+) parameters", stdout_text).group(1))
    n_batches = len(batches) // n_epochs
    if n_batches * n_epochs != len(batches) or len(lrs) != len(batches):
        raise RuntimeError(f"recorded {len(batches)} training batches and {len(lrs)} optimiser steps "
                           f"for {n_epochs} epochs")
    lam_x = hparams["lambdas"][0]
    per_record = len(records) // n_epochs
    epochs = []
    for e in range(n_epochs):
        b = batches[e * n_batches:(e + 1) * n_batches]
        loss = [lam_x * mse + kl_per_epoch[e] * kl for mse, kl in b]
        recs = records[e * per_record:(e + 1) * per_record]
        epochs.append({
            "epoch": e + 1, "lr": lrs[e * n_batches], "lambda_kl": kl_per_epoch[e],
            "train_loss": float(np.mean(loss)), "train_mse": float(np.mean([m for m, _ in b])),
            "train_kl": float(np.mean([k for _, k in b])),
            # their printed record means, over the same batches when the records partition the epoch
            "train_loss_printed": float(np.mean([r["train_total"] for r in recs])),
            "val_loss": recs[-1]["val_loss_final_kl"], "val_mse": recs[-1]["val_rec"], "val_kl": recs[-1]["val_kl"],
            "val_records": [r["val_loss_final_kl"] for r in recs], "records": recs,
        })
    sel = _evaluate_selected(mod, args.task, run_dir, json.loads((run_dir / "hparams.json").read_text()))
    with open(run_dir / ".recon.tmp", "wb") as fh:
        np.savez(fh, **{k: v for k, v in sel.items() if v is not None and k != "irreps"})
    (run_dir / ".recon.tmp").replace(run_dir / "recon.npz")
    metrics = json.loads((run_dir / "validation_metrics.json").read_text())
    rewritten = json.loads((run_dir / "hparams.json").read_text())
    result = {
        "side": "authors", "seed": hparams["seed"], "n_params": n_params, "wall_s": wall,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "n_batches_per_epoch": n_batches, "records_per_epoch": per_record, "epochs": epochs,
        "selected": {"file": "lowest_total_loss_with_final_kl_model.pt",
                     "val_loss_final_kl": metrics["lowest_total_loss_with_final_kl"],
                     "record": int(np.argmin([r["val_loss_final_kl"] for r in records])) + 1},
        "normalizing_constant": rewritten["model_hparams"].get("input_normalizing_constant"),
        "irreps": sel["irreps"],
        "batches": batches,
    }
    tmp = run_dir / ".result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(run_dir / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
