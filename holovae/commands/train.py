"""`holovae train`: train an H-(V)AE on HDF5 coefficient files."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch
    from e3nn import o3

    from ..config import load_run_config
    from ..data.hdf5 import read_dataset
    from ..train import train

    tr = read_dataset(args.train)
    va = read_dataset(args.val, expected_irreps=tr.irreps)
    model_cfg, train_cfg = load_run_config(args.config, args.set, irreps_in=str(tr.irreps))
    if o3.Irreps(model_cfg.irreps_in).simplify() != tr.irreps.simplify():
        raise ValueError(f"{args.config}: model irreps {model_cfg.irreps_in} do not match the data's {tr.irreps} ({args.train})")
    if args.threads:
        train_cfg.num_threads = args.threads
    train_cfg.progress = not args.no_progress
    model = train(model_cfg, tr.coefficients, va.coefficients, train_cfg, args.out)
    log.info("best model: %s (%d parameters)", Path(args.out) / "best.pt", model.n_parameters())


def register(sub) -> None:
    t = sub.add_parser("train", help="train an H-(V)AE on HDF5 coefficient files")
    t.add_argument("--train", required=True, help="training HDF5 (coefficients [N, dim])")
    t.add_argument("--val", required=True, help="validation HDF5")
    t.add_argument("--config", default=None, help="YAML with 'model' and 'train' sections (optional with --set)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 (repeatable)")
    t.add_argument("--out", required=True, help="output directory (best.pt, last.pt, history.json)")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=run)

