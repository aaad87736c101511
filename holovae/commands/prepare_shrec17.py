"""`holovae prepare-shrec17`: SHREC'17 meshes (folder or zip) -> ray-cast spherical images ->
spherical Fourier coefficients -> one HDF5 file per split or shard.

The work is :func:`holovae.data.shrec17.prepare_shrec17`; unreadable meshes are listed in
``--skipped`` (TSV: file, reason) and more than ``--max-skipped-fraction`` of them fails the run.
"""
from __future__ import annotations

import logging

from ..atomic import write_tsv_atomic

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch

    from ..data.shrec17 import prepare_shrec17, read_shrec17_labels
    from ..transforms.raycast import SPHERICAL_CNNS_STANDARDIZATION, has_fast_rays

    if args.threads:
        torch.set_num_threads(args.threads)
    labels = read_shrec17_labels(args.labels) if args.labels else None
    standardization = SPHERICAL_CNNS_STANDARDIZATION if args.standardize == "spherical-cnns" else None
    log.info("prepare-shrec17: %s shard %d/%d -> %s (bw %d, L %d, %s quadrature, standardisation %s, "
             "%d classes, ray backend %s)", args.meshes, args.shard + 1, args.shards, args.out, args.bw, args.lmax,
             args.quadrature, args.standardize, len(labels.classes) if labels else 0,
             "embree" if has_fast_rays() else "trimesh (slow: pip install embreex)")
    path, skipped = prepare_shrec17(args.meshes, labels, args.out, bw=args.bw, lmax=args.lmax,
                                    quadrature=args.quadrature, standardization=standardization,
                                    shard=args.shard, shards=args.shards,
                                    max_skipped_fraction=args.max_skipped_fraction,
                                    progress=not args.no_progress)
    if args.skipped:
        write_tsv_atomic(args.skipped, ("file", "reason"), skipped)
    log.info("wrote %s (%d meshes skipped)", path, len(skipped))


def register(sub) -> None:
    p = sub.add_parser("prepare-shrec17", help="ray-cast SHREC'17 meshes onto the sphere, transform, write HDF5")
    p.add_argument("--meshes", required=True, help="a folder or .zip of <id>.obj meshes (e.g. train_perturbed.zip)")
    p.add_argument("--labels", action="append", default=[],
                   help="label CSV (id,synsetId,subSynsetId,modelId,split); repeatable. Give every split's CSV so "
                        "that all splits index the classes alike; none: an unlabelled split")
    p.add_argument("--out", required=True, help="output HDF5")
    p.add_argument("--bw", type=int, default=90, help="Driscoll-Healy bandwidth of the ray-cast grid (paper: 90)")
    p.add_argument("--lmax", type=int, default=14, help="maximum degree of the spherical Fourier transform (paper: 14)")
    p.add_argument("--quadrature", default="dh", choices=["dh", "lstsq-weights", "lstsq"],
                   help="quadrature of the spherical Fourier transform (see holovae.transforms.spherical)")
    p.add_argument("--standardize", default="spherical-cnns", choices=["spherical-cnns", "none"],
                   help="subtract/divide each channel by Spherical CNNs' SHREC'17 mean/std (default) or leave raw")
    p.add_argument("--shard", type=int, default=0, help="0-based shard index")
    p.add_argument("--shards", type=int, default=1, help="split the meshes into this many contiguous shards")
    p.add_argument("--max-skipped-fraction", type=float, default=0.01,
                   help="fail instead of writing a partial result when more meshes than this fraction are unreadable")
    p.add_argument("--skipped", default=None, help="TSV of the meshes that could not be used")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
