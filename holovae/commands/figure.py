"""`holovae figure`: the paper's MNIST figures (Figure 2 panels, Figure 3 overlays) and the latent
space of protein neighbourhoods coloured by secondary structure (Figure 4B) as PNGs."""
from __future__ import annotations

import logging

log = logging.getLogger("holovae")

# KIND -> the inputs it needs ("z" = latent codes: --embeddings, or --model with --data).
NEEDS = {
    "canonical": ("model", "data"),
    "umap": ("z",),
    "prior-samples": ("model",),
    "interpolations": ("model", "data"),
    "overlays": ("model", "data"),
    "lba-scatter": ("predictions",),
}


def _check_inputs(args) -> None:
    missing = []
    for need in NEEDS[args.kind]:
        if need == "z":
            if not args.embeddings and not (args.model and args.data):
                missing.append("--embeddings (or both --model and --data)")
        elif not getattr(args, need, None):
            missing.append(f"--{need}")
    if missing:
        raise ValueError(f"figure {args.kind} needs {' and '.join(missing)}")
    if _color_by(args) is not None and args.kind != "umap":
        raise ValueError(f"--color-by applies to figure umap only, not {args.kind}")


def _color_by(args):
    """The extra dataset named by --color-by, or None for the labels (the default)."""
    name = getattr(args, "color_by", None)
    return None if name in (None, "", "labels") else name


def _latents(args, model, data):
    """Latent codes ``[N, z]``, labels ``[N]`` and the dataset they come from: from --embeddings
    if given, else by encoding --data."""
    from ..data.hdf5 import read_dataset
    from ..report.figures import encode_means

    if args.embeddings:
        emb = read_dataset(args.embeddings)
        if "z" not in emb.extra:
            raise ValueError(f"{args.embeddings}: no dataset 'z' (write it with `holovae embed`)")
        return emb.extra["z"], emb.labels, emb
    return encode_means(model, data.coefficients), data.labels, data


def _colours(args, source, data, n: int):
    """``(values [n], legend title, label names)`` to colour the UMAP by: the labels (named by the
    data file's ``label_names`` attribute, as `holovae prepare-structures` writes it, if any) or
    the extra dataset --color-by of --data (else of --embeddings), checked to be row-aligned."""
    import numpy as np

    name = _color_by(args)
    files = [d for d in (data, source) if d is not None]
    if name is None:
        names = next((d.attrs["label_names"] for d in files if d.attrs.get("label_names")), None)
        from ..data.featurize import AMINO_ACIDS

        title = "digit" if names is None else ("residue type" if list(names) == list(AMINO_ACIDS) else "label")
        return source.labels, title, names
    holder = next((d for d in files if name in d.extra), None)
    if holder is None:
        have = sorted({k for d in files for k in d.extra})
        raise ValueError(f"--color-by {name}: no dataset {name!r} in {' or '.join(str(d.path) for d in files)} "
                         f"(extra datasets there: {', '.join(have) or 'none'}); pass --data with the file "
                         "it is stored in (e.g. protein neighbourhoods written by `holovae prepare-structures`)")
    values = np.asarray(holder.extra[name])
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"--color-by {name}: {holder.path} has {name} of shape {values.shape}, "
                         f"expected one value per latent code ({n})")
    if holder is not source and holder.ids is not None and source.ids is not None \
            and not np.array_equal(holder.ids, source.ids):
        raise ValueError(f"--color-by {name}: sample ids of {holder.path} and {source.path} differ "
                         "(embeddings of another file?)")
    return values, name, None


def _lba_scatter(args) -> None:
    """Figure 4D from `holovae lba-regress --predictions`: one regressor's test predictions,
    averaged over seeds per complex."""
    import csv

    import numpy as np

    from ..report import figures

    with open(args.predictions, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("regressor") == args.regressor]
    if not rows:
        raise ValueError(f"{args.predictions}: no predictions of regressor {args.regressor!r}")
    by_complex: dict = {}
    for r in rows:
        by_complex.setdefault(r["complex_id"], (float(r["measured"]), []))[1].append(float(r["predicted"]))
    measured = np.array([m for m, _ in by_complex.values()])
    predicted = np.array([np.mean(p) for _, p in by_complex.values()])
    seeds = len({r["seed"] for r in rows})
    figures.fig_lba_scatter(measured, predicted, args.out, seed_count=seeds,
                            title=args.title or f"{args.regressor.replace('_', ' ')} on test complexes")


def run(args) -> None:
    from ..data.hdf5 import read_dataset
    from ..report import figures
    from ..models.checkpoint import load_model

    _check_inputs(args)
    if args.kind == "lba-scatter":
        _lba_scatter(args)
        return
    model = load_model(args.model) if args.model else None
    data = read_dataset(args.data, expected_irreps=model.config.irreps_in if model else None) if args.data else None
    if args.kind == "canonical":
        figures.fig_canonical(model, data.coefficients, data.labels, args.out)
    elif args.kind == "umap":
        z, _, source = _latents(args, model, data)
        values, title, names = _colours(args, source, data, len(z))
        figures.fig_umap(z, values, args.out, seed=args.seed, color_title=title, label_names=names)
    elif args.kind == "prior-samples":
        figures.fig_prior_samples(model, args.out, seed=args.seed)
    elif args.kind == "interpolations":
        figures.fig_interpolations(model, data.coefficients, data.labels, args.out)
    else:
        figures.fig_overlays(model, data.coefficients, data.labels, args.out)


def register(sub) -> None:
    f = sub.add_parser("figure", help="draw a figure of the paper (Figures 2, 3 and 4B) as a PNG")
    f.add_argument("kind", choices=list(NEEDS), help="which figure")
    f.add_argument("--model", help="trained model (best.pt)")
    f.add_argument("--data", help="test HDF5 with labels (coefficients [N, dim])")
    f.add_argument("--embeddings", help="HDF5 from `holovae embed` (z, labels); for umap")
    f.add_argument("--out", required=True, help="output PNG")
    f.add_argument("--seed", type=int, default=0, help="UMAP random_state / prior-sample seed")
    f.add_argument("--color-by", default=None, metavar="NAME",
                   help="umap only: colour by this extra dataset of --data (or of --embeddings), e.g. "
                        "secondary_structure for protein neighbourhoods (Figure 4B); default: the labels")
    f.add_argument("--predictions", help="lba-scatter: predictions CSV of `holovae lba-regress`")
    f.add_argument("--regressor", default="random_forest", help="lba-scatter: whose predictions to draw")
    f.add_argument("--title", default=None, help="lba-scatter: figure title")
    f.set_defaults(func=run)
