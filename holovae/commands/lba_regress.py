"""`holovae lba-regress`: binding affinity regressed from per-complex features of the pocket
residues (the paper's LBA experiment), over the folds of a ``holovae lba-split`` JSON.

The work is :func:`holovae.evaluate.lba.regress_lba` (its module docstring describes the
features, the fits and how the metrics are pooled); the output JSON is its result with the
``--meta`` pairs, and ``--predictions`` the test predictions.
"""
from __future__ import annotations

import logging

from .options import parse_meta

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch

    from ..atomic import write_json_atomic
    from ..evaluate.lba import finite_or_none, regress_lba, write_predictions

    meta = parse_meta(args.meta)   # before the slow part, so that a typo fails at once
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    out, rows = regress_lba(args.data, args.split, args.features, model=args.model,
                            regressors=list(dict.fromkeys(args.regressors)), seeds=[int(s) for s in args.seeds],
                            protocol=args.protocol, rf_grid=args.rf_grid, allow_missing=args.allow_missing,
                            n_jobs=args.threads, batch_size=args.batch_size, device=device)
    clash = sorted(set(meta) & set(out))
    if clash:
        raise ValueError(f"--meta keys {clash} collide with output keys")
    if args.predictions:
        write_predictions(args.predictions, rows)
    write_json_atomic(args.out, finite_or_none({**out, **meta}))
    log.info("wrote %s%s", args.out, f" and {args.predictions}" if args.predictions else "")


def register(sub) -> None:
    from ..evaluate.lba import FEATURES, PREDICTION_COLUMNS, REGRESSORS

    p = sub.add_parser("lba-regress", help="binding-affinity regression from per-complex pocket features "
                                           "(linear, random forest, mean baseline) over an lba-split")
    p.add_argument("--data", required=True, help="LBA HDF5 from `holovae prepare-lba`")
    p.add_argument("--split", required=True, help="split JSON from `holovae lba-split`")
    p.add_argument("--features", required=True, choices=FEATURES,
                   help="hae: the model's z summed over the pocket; zernike_inv: the l=0 coefficients summed")
    p.add_argument("--model", default=None, help="best.pt of the encoder (needed for --features hae)")
    p.add_argument("--regressors", nargs="+", default=list(REGRESSORS), choices=REGRESSORS,
                   help="regressors to fit (mean: the mean of the training affinities, the trivial baseline)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="distinct seeds, one fit each")
    p.add_argument("--out", required=True, help="output JSON of metrics")
    p.add_argument("--predictions", default=None, help="CSV of test predictions: " + ", ".join(PREDICTION_COLUMNS))
    p.add_argument("--protocol", default="paper", choices=["paper", "authors"],
                   help="regressors as the paper's text (default) or as the authors' released code (one bootstrap "
                        "resample, mean of 10 forests, a linear layer on raw features keeping its final weights); "
                        "see docs/fidelity.md#lba")
    p.add_argument("--rf-grid", default="paper", choices=["paper", "small"],
                   help="random-forest grid: the paper's 48 points, or 8 for quick demos")
    p.add_argument("--meta", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="copied into the output (value parsed as YAML), e.g. --meta model=hae_z16 (repeatable)")
    p.add_argument("--allow-missing", action="store_true",
                   help="drop split complexes the data never saw (default: only those skipped at preparation)")
    p.add_argument("--threads", type=int, default=None, help="torch threads and random-forest jobs")
    p.add_argument("--batch-size", type=int, default=512, help="embedding batch size (hae)")
    p.add_argument("--device", default="cpu", help="embedding device: cpu, cuda, auto")
    p.set_defaults(func=run)
