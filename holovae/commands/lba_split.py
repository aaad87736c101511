"""`holovae lba-split`: a train / validation / test split of LBA complexes by protein sequence
identity, or from ATOM3D's split lists, as one JSON read by ``holovae lba-regress``.

The work is :func:`holovae.data.lba.split.build_split` (its module docstring describes the JSON).
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger("holovae")


def run(args) -> None:
    from ..atomic import write_json_atomic
    from ..data.lba import SET_NAMES, build_split

    split = build_split(complexes=args.complexes, lists=args.lists, ids=args.ids, folds=args.folds,
                        fractions=args.fractions, val_fraction=args.val_fraction, min_identity=args.min_identity,
                        method=args.method, seed=args.seed, threads=args.threads, identity_check=args.identity_check)
    write_json_atomic(args.out, split)
    sizes = ", ".join("/".join(str(len(f[n])) for n in SET_NAMES) for f in split["folds"])
    log.info("wrote %s: %s split (%s), train/val/test %s, %d excluded. %s", args.out, split["kind"],
             split["source"], sizes, len(split["excluded"]), split["caption"])


def register(sub) -> None:
    p = sub.add_parser("lba-split", help="train/val/test split (or CV folds) of LBA complexes by protein sequence "
                                         "identity, or from ATOM3D's split lists")
    p.add_argument("--complexes", default=None,
                   help="folder of PDBbind-style complexes (as for prepare-lba); optional with --lists")
    p.add_argument("--out", required=True, help="output split JSON")
    p.add_argument("--method", default="auto", choices=["auto", "mmseqs", "align"],
                   help="clustering: mmseqs2 (auto: when on PATH) or exact pairwise alignments")
    p.add_argument("--min-identity", type=float, default=0.3,
                   help="complexes whose proteins reach this identity share a cluster")
    p.add_argument("--folds", type=int, default=None, help="K >= 2: K cross-validation folds grouped by cluster; "
                                                           "default: one fixed split with --fractions")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,val,test shares of the fixed split")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="CV: share of each fold's non-test complexes (whole clusters) held out for validation")
    p.add_argument("--seed", type=int, default=0, help="order in which clusters are dealt to sets")
    p.add_argument("--lists", default=None, help="folder with ATOM3D's train.txt, val.txt, test.txt: use them")
    p.add_argument("--ids", default=None, help="text file of complex ids (one per line): only these")
    p.add_argument("--threads", type=int, default=None, help="mmseqs2 threads")
    p.add_argument("--identity-check", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the highest identity between sets by exact alignment (quadratic; "
                        "--no-identity-check for thousands of complexes)")
    p.set_defaults(func=run)
