"""`holovae figure`: the paper's MNIST figures (Figure 2 panels, Figure 3 overlays) as PNGs."""
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
}


def _check_inputs(args) -> None:
    missing = []
    for need in NEEDS[args.kind]:
        if need == "z":
            if not args.embeddings and not (args.model and args.data):
                missing.append("--embeddings (or both --model and --data)")
        elif not getattr(args, need):
            missing.append(f"--{need}")
    if missing:
        raise ValueError(f"figure {args.kind} needs {' and '.join(missing)}")


def _latents(args, model, data):
    """Latent codes ``[N, z]`` and labels ``[N]``: from --embeddings if given, else by encoding."""
    from ..data.hdf5 import read_dataset
    from ..report.figures import encode_means

    if args.embeddings:
        emb = read_dataset(args.embeddings)
        if "z" not in emb.extra:
            raise ValueError(f"{args.embeddings}: no dataset 'z' (write it with `holovae embed`)")
        return emb.extra["z"], emb.labels
    return encode_means(model, data.coefficients), data.labels


def run(args) -> None:
    from ..data.hdf5 import read_dataset
    from ..report import figures
    from ..train import load_model

    _check_inputs(args)
    model = load_model(args.model) if args.model else None
    data = read_dataset(args.data, expected_irreps=model.config.irreps_in if model else None) if args.data else None
    if args.kind == "canonical":
        figures.fig_canonical(model, data.coefficients, data.labels, args.out)
    elif args.kind == "umap":
        z, labels = _latents(args, model, data)
        figures.fig_umap(z, labels, args.out, seed=args.seed)
    elif args.kind == "prior-samples":
        figures.fig_prior_samples(model, args.out, seed=args.seed)
    elif args.kind == "interpolations":
        figures.fig_interpolations(model, data.coefficients, data.labels, args.out)
    else:
        figures.fig_overlays(model, data.coefficients, data.labels, args.out)


def register(sub) -> None:
    f = sub.add_parser("figure", help="draw an MNIST figure of the paper (Figures 2 and 3) as a PNG")
    f.add_argument("kind", choices=list(NEEDS), help="which figure")
    f.add_argument("--model", help="trained model (best.pt)")
    f.add_argument("--data", help="test HDF5 with labels (coefficients [N, dim])")
    f.add_argument("--embeddings", help="HDF5 from `holovae embed` (z, labels); for umap")
    f.add_argument("--out", required=True, help="output PNG")
    f.add_argument("--seed", type=int, default=0, help="UMAP random_state / prior-sample seed")
    f.set_defaults(func=run)
