"""`holovae prepare-lba`: PDBbind-style complex folders or ATOM3D LMDB datasets -> pocket-residue
neighbourhoods -> ZFT -> one LBA HDF5 file and a TSV of skipped complexes.

The work is :func:`holovae.data.lba.prepare.prepare_lba` (its docstring says what each option
does). With ``--model`` the transform is the one the encoder was trained with (the
``data_attrs`` stored in the model file), so ``holovae lba-regress --features hae`` can embed the
pockets; an explicit option that contradicts the model is an error, never silently replaced,
except ``--other-channel``, which adds the "other element" channel to the model's transform
(the data of Table S10's ``zernike_inv_other`` baseline, which the model cannot embed).
"""
from __future__ import annotations

import logging

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch

    from ..data.lba import parse_elements, prepare_lba

    if args.threads:
        torch.set_num_threads(args.threads)
    transform = {"lmax": args.lmax, "n_max": args.n_max, "r_max": args.r_max,
                 "elements": None if args.elements is None else parse_elements(args.elements),
                 "other_channel": args.other_channel, "normalization": args.normalization, "radial": args.radial}
    done = prepare_lba(args.out, args.skipped, complexes=args.complexes, atom3d=args.atom3d, index=args.index,
                       lists_out=args.lists_out, model=args.model, transform=transform, protocol=args.protocol,
                       pocket_cutoff=args.pocket_cutoff, receptor=args.receptor, ids=args.ids,
                       max_complexes=args.max_complexes, chunk=args.chunk, progress=not args.no_progress)
    f, n_tried = done.data, done.n_tried
    n_rows, t = len(f), f.timings
    elapsed = max(t.get("elapsed_s", 0.0), 1e-9)
    n_bad = sum(1 for pid, _ in f.skipped if "|" not in pid)     # residue rows are "pdb|chain|..."
    log.info("wrote %s: %d pocket neighbourhoods of %d/%d complexes (%d complexes skipped, %d pocket residues "
             "skipped; see %s) in %.1f s: %.2f complexes/s, %.0f neighbourhoods/s (parsing %.1f s, "
             "transform %.1f s)", args.out, n_rows, len(f.complex_ids), n_tried, n_bad, len(f.skipped) - n_bad,
             args.skipped, elapsed, n_tried / elapsed, n_rows / elapsed, t.get("parse_s", 0.0),
             t.get("transform_s", 0.0))


def register(sub) -> None:
    from ..data.lba import TRANSFORM_DEFAULTS

    p = sub.add_parser("prepare-lba",
                       help="PDBbind-style complexes or ATOM3D LBA LMDBs -> pocket-residue neighbourhoods -> Zernike "
                            "coefficients (LBA HDF5)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--complexes", default=None, help="folder of PDBbind-style complexes (<id>/<id>_protein.pdb, "
                                                       "<id>_ligand.sdf|mol2), searched recursively")
    src.add_argument("--atom3d", action="append", default=None, metavar="DIR",
                     help="ATOM3D LMDB dataset (a folder with data.mdb, e.g. ATOM3D's LBA split-by-*/data/train); "
                          "repeat for several; complexes and affinities (scores.neglog_aff) come from the items")
    p.add_argument("--index", default=None, help="affinity table: PDBbind INDEX file or CSV (default: the INDEX_* / "
                                                 "*.csv tables in the complexes folder or its index/ folder; with "
                                                 "--atom3d: the items' scores.neglog_aff)")
    p.add_argument("--lists-out", default=None, metavar="DIR",
                   help="with --atom3d .../train --atom3d .../val --atom3d .../test: write DIR/train.txt, val.txt, "
                        "test.txt (their ids; the input of `holovae lba-split --lists`)")
    p.add_argument("--out", required=True, help="output LBA HDF5")
    p.add_argument("--skipped", required=True, help="TSV of skipped complexes and pocket residues with reasons")
    p.add_argument("--model", default=None, help="best.pt of a protein-neighbourhood model: take its data's transform "
                                                 "(with --other-channel: plus the 'other element' channel)")
    p.add_argument("--lmax", type=int, default=None, help=f"default {TRANSFORM_DEFAULTS['lmax']} (or the model's)")
    p.add_argument("--n-max", type=int, default=None, help=f"default {TRANSFORM_DEFAULTS['n_max']} (or the model's)")
    p.add_argument("--r-max", type=float, default=None,
                   help=f"neighbourhood radius and ZFT r_max in Å, default {TRANSFORM_DEFAULTS['r_max']:g} (or the model's)")
    p.add_argument("--elements", default=None,
                   help=f"comma-separated channel elements, default {TRANSFORM_DEFAULTS['elements']} (or the model's)")
    p.add_argument("--other-channel", action="store_true",
                   help="one extra channel for all other elements (added to the model's channels with --model)")
    p.add_argument("--normalization", default=None, choices=["none", "square"], help="default none (or the model's)")
    p.add_argument("--radial", default=None, choices=["orthonormal", "authors"], help="default orthonormal (or the model's)")
    p.add_argument("--protocol", default="paper", choices=["paper", "authors"],
                   help="pocket: paper = residues whose Cα is within 10 Å of a ligand atom (default); authors = "
                        "ATOM3D's 6 Å pocket as the authors' code (the items' atoms_pocket with --atom3d, else "
                        "residues with any heavy atom within 6 Å); see docs/fidelity.md#lba")
    p.add_argument("--pocket-cutoff", type=float, default=None,
                   help="pocket distance in Å instead of the protocol's (paper: 10, Cα; authors: 6, any atom)")
    p.add_argument("--receptor", default=None, choices=["protein", "protein_or_pocket", "pocket", "larger"],
                   help="receptor: the full protein (default for --complexes), falling back to PDBbind's pocket, or "
                        "the pocket; with --atom3d the atoms_protein / atoms_pocket tables, and 'larger' (default for "
                        "--atom3d): whichever of the two has more atoms")
    p.add_argument("--ids", default=None, help="text file of complex ids (one per line): only these")
    p.add_argument("--max-complexes", type=int, default=None, help="only the first N complexes (by id)")
    p.add_argument("--chunk", type=int, default=4096, help="neighbourhoods per batched Zernike transform")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the transform")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run)
