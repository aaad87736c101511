"""`holovae embed-structures`: per-residue invariant embeddings of a user's own structures.

The structures are transformed exactly as the model's training data was (parameters stored in
the model file by ``holovae train``, ``central_ca_dropped`` included), every residue's
neighbourhood is encoded, and one HDF5 is written: ``coefficients`` = z (invariant, irreps
``Zx0e``), extra ``frame`` [N, 3, 3], ``secondary_structure`` and ``residue_name``, ``ids``
"pdb|chain|resnum|icode|resname".
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("holovae")


def run(args) -> None:
    import torch
    from holovae._e3nn import o3

    from ..data.featurize import CLOUD_KINDS, featurize_structures, refuse_empty, write_skipped
    from ..data.hdf5 import write_dataset
    from ..embed import embed
    from ..models.checkpoint import load_model, model_transform

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    attrs = model_transform(args.model, kinds=tuple(CLOUD_KINDS.values()),
                            what="protein-neighbourhood or amino-acid model")
    kinds = {v: k for k, v in CLOUD_KINDS.items()}
    model = load_model(args.model, device)
    f = featurize_structures(args.structures, lmax=attrs["lmax"], n_max=attrs["n_max"], r_max=attrs["r_max"],
                             elements=attrs["elements"], other_channel=attrs["other_channel"],
                             normalization=attrs["normalization"], radial=attrs["radial"],
                             secondary=args.secondary, keep_hetero=attrs.get("keep_hetero", True),
                             progress=not args.no_progress, clouds=kinds[attrs["kind"]],
                             drop_ca=attrs.get("central_ca_dropped", True))
    if f.irreps.simplify() != o3.Irreps(model.config.irreps_in).simplify():
        raise ValueError(f"{args.model}: model irreps {model.config.irreps_in} differ from the transform's {f.irreps}")
    if args.skipped:
        write_skipped(args.skipped, f.skipped)
    refuse_empty(len(f.ids), args.structures, f.skipped, str(args.out))
    out = embed(model, torch.from_numpy(f.coefficients), batch_size=args.batch_size, reconstructions=False)
    z = out["z"].numpy()
    write_dataset(args.out, z, f"{z.shape[1]}x0e", labels=f.labels, ids=f.ids,
                  attrs={**f.attrs, "content": "per-residue invariants z of an H-(V)AE", "model": str(args.model)},
                  extra={"frame": out["frame"].numpy(),
                         "secondary_structure": np.asarray(f.secondary, dtype=object),
                         "residue_name": np.asarray(f.resnames, dtype=object)})
    log.info("wrote %s: %d residues x z=%d from %d/%d structures (%d skipped rows)", args.out, len(f.ids),
             z.shape[1], f.attrs["n_files_ok"], len(args.structures), len(f.skipped))


def register(sub) -> None:
    p = sub.add_parser("embed-structures",
                       help="per-residue invariant embeddings (z) of PDB/mmCIF files with a trained neighbourhood model")
    p.add_argument("structures", nargs="+", help="PDB/mmCIF files (plain or .gz)")
    p.add_argument("--model", required=True, help="best.pt of a protein-neighbourhood model")
    p.add_argument("--out", required=True, help="HDF5: coefficients = z [N, Z], extra frame, secondary_structure")
    p.add_argument("--skipped", default=None, help="TSV of skipped files/residues with reasons")
    p.add_argument("--secondary", default="geometry", choices=["auto", "dssp", "geometry", "none"],
                   help="secondary-structure labels stored per residue (auto: DSSP when installed, else geometry)")
    p.add_argument("--batch-size", type=int, default=512, help="residues per forward pass")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
