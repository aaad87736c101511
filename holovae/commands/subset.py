"""`holovae subset`: a seeded (class-balanced) subset of an HDF5 dataset, written atomically.

The training-size ablation of the amino-acid experiment (Table S5) draws training sets of
400 ... 20,000 residues with the residue types balanced, one draw per repeat (``--seed``).
"""
from __future__ import annotations

import logging

log = logging.getLogger("holovae")


def run(args) -> None:
    import numpy as np

    from ..data.hdf5 import read_dataset, write_dataset
    from ..data.subsets import balanced_indices, random_indices

    ds = read_dataset(args.data)
    if args.n < 1:
        raise ValueError(f"--n must be positive, got {args.n}")
    if args.balanced:
        if ds.labels is None:
            raise ValueError(f"{args.data}: --balanced needs a 'labels' dataset")
        if args.n > len(ds):
            raise ValueError(f"{args.data}: asked for {args.n} samples but the file has {len(ds)}")
        idx = balanced_indices(ds.labels, args.n, args.seed)
    else:
        idx = random_indices(len(ds), args.n, args.seed)
        if len(idx) < args.n:
            log.warning("%s has %d samples < --n %d: taking all", args.data, len(ds), args.n)
    attrs = dict({k: v for k, v in ds.attrs.items() if k != "holovae_version"}, subset_of=str(args.data), subset_seed=args.seed, subset_balanced=bool(args.balanced),
                 subset_size=int(len(idx)))
    write_dataset(args.out, ds.coefficients[idx], ds.irreps,
                  labels=None if ds.labels is None else ds.labels[idx],
                  ids=None if ds.ids is None else ds.ids[idx], attrs=attrs,
                  extra={k: v[idx] for k, v in ds.extra.items()})
    counts = np.bincount(ds.labels[idx]) if ds.labels is not None and ds.labels.dtype.kind in "iu" else []
    log.info("wrote %s: %d of %d samples (seed %d%s)%s", args.out, len(idx), len(ds), args.seed,
             ", balanced" if args.balanced else "", f"; per class {counts.tolist()}" if len(counts) else "")


def register(sub) -> None:
    p = sub.add_parser("subset", help="a seeded (class-balanced) subset of an HDF5 dataset")
    p.add_argument("data", help="input HDF5")
    p.add_argument("--out", required=True, help="output HDF5")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--balanced", action="store_true", help="balance the classes of 'labels' (residue types)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw")
    p.set_defaults(func=run)
