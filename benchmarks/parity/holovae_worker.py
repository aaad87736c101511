"""One training run of holovae through its public interface, the ``holovae train`` command.

    PYTHONPATH=<holovae checkout> python holovae_worker.py --run-dir DIR --train T.h5 --val V.h5

``DIR/config.yaml`` (written by run.py) is the run config; extra ``--set KEY=VALUE`` are passed
through to ``holovae train``. The model goes to ``DIR/model`` (best.pt, last.pt, history.json).
Then the best model (``holovae.train.load_model``) reconstructs the validation set with z = the
mean (``encode`` then ``decode``); ``recon.npz`` holds data and reconstructions divided by the
model's normalising constant (the authors' units), in holovae's coefficient order.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", required=True, type=Path)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    import torch

    import holovae
    from holovae.cli import main as holovae_main
    from holovae.data.hdf5 import read_dataset
    from holovae.models.checkpoint import load_model

    torch.set_num_threads(args.threads)
    model_dir = args.run_dir / "model"
    cmd = ["train", "--train", args.train, "--val", args.val, "--config", str(args.run_dir / "config.yaml"),
           "--out", str(model_dir), "--threads", str(args.threads), "--no-progress"]
    for s in args.set:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    rc = holovae_main(cmd)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"holovae {' '.join(cmd)} failed with exit code {rc}")

    history = json.loads((model_dir / "history.json").read_text())
    best = torch.load(model_dir / "best.pt", map_location="cpu", weights_only=False)
    model = load_model(model_dir / "best.pt")
    scale = float(model.input_scale)
    x = read_dataset(args.val).coefficients.float()
    with torch.no_grad():
        z_mean, z_log_var, frame = model.encode(x)
        x_rec = model.decode(z_mean, frame)
    arrays = {"x": (x / scale).numpy(), "x_rec": (x_rec / scale).numpy(), "z_mean": z_mean.numpy()}
    if z_log_var is not None:
        arrays["z_log_var"] = z_log_var.numpy()
    with open(args.run_dir / ".recon.tmp", "wb") as fh:
        np.savez(fh, **arrays)
    (args.run_dir / ".recon.tmp").replace(args.run_dir / "recon.npz")
    result = {
        "side": "holovae", "holovae_version": getattr(holovae, "__version__", "?"), "holovae_path": holovae.__file__,
        "n_params": model.n_parameters(), "wall_s": wall, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "history": history, "best_epoch": best.get("epoch"), "best_val": best.get("val"),
        "normalizing_constant": scale, "command": ["holovae", *cmd],
    }
    tmp = args.run_dir / ".result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.run_dir / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
