"""`holovae synthetic-meshes`: a small labelled set of procedural meshes in SHREC'17's layout
(the offline stand-in for SHREC'17; see :mod:`holovae.data.synthetic_meshes`)."""
from __future__ import annotations

import logging

log = logging.getLogger("holovae")


def run(args) -> None:
    from ..data.synthetic_meshes import SYNTHETIC_CLASSES, write_synthetic_shrec17

    per_class = {"train": args.train, "val": args.val, "test": args.test}
    paths = write_synthetic_shrec17(args.out_dir, per_class, seed=args.seed, stretch=args.stretch,
                                    jitter=args.jitter)
    log.info("wrote SYNTHETIC meshes of %d classes to %s: %s", len(SYNTHETIC_CLASSES), args.out_dir,
             ", ".join(f"{split} {n * len(SYNTHETIC_CLASSES)}" for split, n in per_class.items()))
    for split, p in paths.items():
        log.info("labels of %s: %s", split, p)


def register(sub) -> None:
    p = sub.add_parser("synthetic-meshes", help="procedural labelled meshes in SHREC'17's layout (offline demo data)")
    p.add_argument("--out-dir", required=True, help="writes <split>_perturbed/<id>.obj and <split>.csv here")
    p.add_argument("--train", type=int, default=30, help="models per class in the training split")
    p.add_argument("--val", type=int, default=5, help="models per class in the validation split")
    p.add_argument("--test", type=int, default=15, help="models per class in the test split")
    p.add_argument("--stretch", type=float, default=0.2, help="per-axis random stretch, +-fraction")
    p.add_argument("--jitter", type=float, default=0.01, help="vertex noise, fraction of the model's size")
    p.add_argument("--seed", type=int, default=0, help="seed of the shapes, stretches, jitter and rotations")
    p.set_defaults(func=run)
