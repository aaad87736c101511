"""`holovae embed`: invariants, frames and reconstructions of an HDF5 file."""
from __future__ import annotations

import logging

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch

    from ..data.hdf5 import read_dataset, write_dataset
    from ..embed import embed
    from ..models.checkpoint import load_model

    if len(args.data) != len(args.out):
        raise ValueError(f"--data has {len(args.data)} files but --out {len(args.out)}; give one output per input")
    model = load_model(args.model, args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    for data_path, out_path in zip(args.data, args.out):   # one model load for all splits
        data = read_dataset(data_path, expected_irreps=model.config.irreps_in)
        out = embed(model, data.coefficients, batch_size=args.batch_size, progress=not args.no_progress)
        extra = {"z": out["z"].numpy(), "frame": out["frame"].numpy()}
        write_dataset(out_path, out["x_rec"], model.config.irreps_in, labels=data.labels, ids=data.ids,
                      attrs={"model": str(args.model), "data": str(data_path), "content": "reconstructions"},
                      extra=extra)
        log.info("wrote %s (%d samples)", out_path, len(data))


def register(sub) -> None:
    e = sub.add_parser("embed", help="invariants z, frames and reconstructions of an HDF5 file")
    e.add_argument("--model", required=True, help="model file written by `holovae train` (best.pt)")
    e.add_argument("--data", required=True, nargs="+", help="HDF5 coefficient file(s)")
    e.add_argument("--out", required=True, nargs="+",
                   help="one HDF5 per --data file: coefficients = reconstructions; datasets z, frame")
    e.add_argument("--batch-size", type=int, default=512, help="samples per forward pass")
    e.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=run)
