"""`holovae prepare-structures`: PDB/mmCIF files -> residue neighbourhoods (or, with ``--clouds
residue``, each residue's own atoms) -> ZFT -> one HDF5 shard.

The work is :func:`holovae.data.featurize.featurize_structures`. A bad file is logged and
listed in ``--skipped`` (TSV: file, chain, resnum, reason); so are residues without a full
backbone. A run that gives no row at all (every input failed, e.g. a mistyped list) writes the
skipped list but no shard and exits non-zero, naming the split (``--split``) and its inputs'
reasons: an empty split would otherwise be marked done and fail hours later. The shard is
written atomically: ``coefficients``, ``ids``
("pdb|chain|resnum|icode|resname"), ``labels`` (index of the residue type in
:data:`holovae.data.featurize.AMINO_ACIDS`), extra ``secondary_structure`` and
``residue_name``, and attributes with every transform parameter and the sha256 of each input.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("holovae")


def _input_files(args) -> list[Path]:
    files = [Path(f) for f in args.files]
    if args.from_list:
        lines = Path(args.from_list).read_text().splitlines()
        files += [Path(line.strip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not files:
        raise ValueError("no input files: give FILES and/or --from-list")
    return files


def run(args) -> None:
    import torch

    from ..data.featurize import featurize_structures, refuse_empty, write_skipped
    from ..data.hdf5 import write_dataset
    from ..data.secondary import find_dssp

    if args.threads:
        torch.set_num_threads(args.threads)
    elements = [e.strip().upper() for e in args.elements.split(",") if e.strip()]
    files = _input_files(args)
    log.info("prepare-structures: %d files -> %s (L=%d, n_max=%d, r_max=%g, channels %s%s, %s radial, "
             "normalisation %s, secondary structure %s%s)", len(files), args.out, args.lmax, args.n_max,
             args.r_max, ",".join(elements), "+other" if args.other_channel else "", args.radial,
             args.normalization, args.secondary,
             f" (dssp: {find_dssp() or 'not found, geometric fallback'})" if args.secondary == "auto" else "")
    f = featurize_structures(files, lmax=args.lmax, n_max=args.n_max, r_max=args.r_max, elements=elements,
                             other_channel=args.other_channel,
                             normalization=None if args.normalization == "none" else args.normalization,
                             radial=args.radial, secondary=args.secondary, keep_hetero=not args.drop_hetero,
                             chunk=args.chunk, progress=not args.no_progress, clouds=args.clouds,
                             drop_ca=args.drop_ca)
    if args.skipped:
        write_skipped(args.skipped, f.skipped)
    refuse_empty(len(f.ids), files, f.skipped, f"{args.split} split ({args.out})" if args.split else str(args.out))
    write_dataset(args.out, f.blocks, f.irreps, labels=f.labels, ids=f.ids, attrs=f.attrs,
                  extra={"secondary_structure": np.asarray(f.secondary, dtype=object),
                         "residue_name": np.asarray(f.resnames, dtype=object)})
    n, t = len(f.ids), f.timings
    bad_files = sum(1 for row in f.skipped if row[1] == "")
    what = "residue clouds" if args.clouds == "residue" else "neighbourhoods"
    log.info("wrote %s: %d %s from %d/%d structures (%d files skipped, %d residues skipped) "
             "in %.1f s: %.2f structures/s, %.0f rows/s (parsing %.1f s, transform %.1f s)",
             args.out, n, what, f.attrs["n_files_ok"], len(files), bad_files, len(f.skipped) - bad_files,
             t["elapsed_s"], len(files) / max(t["elapsed_s"], 1e-9), n / max(t["elapsed_s"], 1e-9),
             t["parse_s"], t["transform_s"])


def register(sub) -> None:
    p = sub.add_parser("prepare-structures",
                       help="PDB/mmCIF files -> residue neighbourhoods -> Zernike coefficients -> one HDF5 shard")
    p.add_argument("files", nargs="*", help="PDB/mmCIF files (plain or .gz)")
    p.add_argument("--from-list", default=None, help="text file with one structure path per line (sharding)")
    p.add_argument("--out", required=True, help="output HDF5 shard")
    p.add_argument("--lmax", type=int, default=6, help="maximum degree l of the Zernike transform (paper: 3, 4, 6, 8)")
    p.add_argument("--n-max", type=int, default=20, help="maximum radial order n (n >= l, n - l even; paper: 20)")
    p.add_argument("--r-max", type=float, default=10.0, help="neighbourhood radius and ZFT r_max (Å)")
    p.add_argument("--elements", default="C,N,O,S", help="comma-separated channel elements")
    p.add_argument("--clouds", default="neighbourhood", choices=["neighbourhood", "residue"],
                   help="'neighbourhood': all atoms within r_max of each Cα; 'residue': the residue's own "
                        "atoms only (amino-acid conformations)")
    p.add_argument("--drop-ca", action=argparse.BooleanOptionalAction, default=True,
                   help="leave out the cloud's central Cα (the authors' code always does: their transform is "
                        "undefined at r = 0); --no-drop-ca keeps it in residue clouds, where it adds the same "
                        "constant to every residue's l = 0 terms")
    p.add_argument("--split", default=None, help="name of the split these files belong to (train/val/test), "
                                                  "for the error when none of them gives a row")
    p.add_argument("--other-channel", action="store_true", help="one extra channel for all other elements")
    p.add_argument("--normalization", default="none", choices=["none", "square"],
                   help="'square': the authors' per-atom normalisation")
    p.add_argument("--radial", default="orthonormal", choices=["orthonormal", "authors"],
                   help="radial functions: orthonormal, or the authors' (integer binomial, not normalised for n > l)")
    p.add_argument("--secondary", default="auto", choices=["auto", "dssp", "geometry", "none"],
                   help="secondary structure: DSSP if on PATH ('auto'), backbone geometry, or none")
    p.add_argument("--drop-hetero", action="store_true", help="drop hetero residues (ligands, ions, MSE ...)")
    p.add_argument("--skipped", default=None, help="TSV of skipped files/residues (file, chain, resnum, reason)")
    p.add_argument("--chunk", type=int, default=4096, help="neighbourhoods per batched Zernike transform")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the transform")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run)
