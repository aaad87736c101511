"""`holovae evaluate`: one JSON of reconstruction, latent-space and equivariance metrics per model
(:func:`holovae.evaluate.model.evaluate_model`), with the ``--meta`` pairs."""
from __future__ import annotations

import json
import logging

from ..atomic import write_json_atomic
from .options import parse_meta

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch

    from ..evaluate.model import evaluate_model

    meta = parse_meta(args.meta)   # before the slow part, so a typo fails at once
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    metrics = evaluate_model(args.model, args.embeddings, args.test_data, args.history,
                             equivariance_samples=args.equivariance_samples, n_clusters=args.clusters,
                             seed=args.seed, device=device, cv_folds=args.cv_folds, retrieval=args.retrieval,
                             knn_fit=args.knn_fit, lc_standardize=args.lc_standardize)
    clash = sorted(set(meta) & set(metrics))
    if clash:
        raise ValueError(f"--meta keys {clash} collide with metric names")
    write_json_atomic(args.out, {**meta, **metrics})
    log.info("wrote %s: %s", args.out, json.dumps(metrics))


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="reconstruction, latent-space and equivariance metrics of a model")
    e.add_argument("--model", required=True, help="model file (best.pt)")
    e.add_argument("--embeddings", required=True, help="directory with train.h5, val.h5, test.h5 from `holovae embed`")
    e.add_argument("--test-data", required=True, help="the original test coefficients (HDF5)")
    e.add_argument("--history", default=None, help="history.json of the training run (seconds per epoch)")
    e.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="copied into the output (value parsed as YAML), e.g. --meta split=NR/R (repeatable)")
    e.add_argument("--equivariance-samples", type=int, default=1000,
                   help="test samples on which the equivariance error is measured, one random rotation each")
    e.add_argument("--clusters", type=int, default=10, help="K-means centroids (0: one per class of the test labels)")
    e.add_argument("--cv-folds", type=int, default=0,
                   help="fit the classifiers by K-fold cross-validation on the test embeddings (only test.h5 "
                        "needed; the amino-acid protocol: 5); 0: train on train.h5, select on val.h5, test on test.h5")
    e.add_argument("--retrieval", action="store_true",
                   help="also the SHREC'17 retrieval metrics (P@N, R@N, F1@N, mAP, NDCG; micro and macro) of the "
                        "linear classifier's test predictions")
    e.add_argument("--knn-fit", default="train+val", choices=["train+val", "train"],
                   help="the KNN classifier's reference latents: training + validation (the authors', default) "
                        "or training only")
    e.add_argument("--lc-standardize", action="store_true",
                   help="standardise z (training mean / std) before the linear classifier (the authors do not)")
    e.add_argument("--seed", type=int, default=0, help="seed of the rotations, K-means and classifiers")
    e.add_argument("--device", default="cpu", help="cpu, cuda or auto (for the equivariance error)")
    e.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    e.add_argument("--out", required=True, help="output JSON")
    e.set_defaults(func=run)
