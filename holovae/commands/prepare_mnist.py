"""`holovae prepare-mnist`: MNIST images -> spherical coefficients -> train/val/test HDF5."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("holovae")


def _subset(images, labels, n, seed, what):
    """A random subset of ``n`` rows (the embedded digits are stored grouped by class)."""
    if n is None or n >= len(labels):
        return images, labels
    if n < 10:
        raise ValueError(f"--n-{what} must be at least 10, got {n}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(labels))[:n])
    return images[idx], labels[idx]


def run(args) -> None:
    from ..data.mnist import load_embedded_mnist, prepare_mnist, read_mnist_split
    from ..download import sha256_file

    checksums = {}
    if args.source == "embedded":
        tr_img, tr_lab, te_img, te_lab = load_embedded_mnist()
        checksums["mnist_embedded.npz"] = "packaged with holovae"
    else:
        src = Path(args.source)
        if not src.is_dir():
            raise FileNotFoundError(f"--source {src}: not a directory with the MNIST IDX files (or 'embedded')")
        tr_img, tr_lab = read_mnist_split(src, "train")
        te_img, te_lab = read_mnist_split(src, "test")
        checksums = {p.name: sha256_file(p) for p in sorted(src.glob("*-ubyte*"))}
    tr_img, tr_lab = _subset(tr_img, tr_lab, args.n_train, args.seed, "train")
    te_img, te_lab = _subset(te_img, te_lab, args.n_test, args.seed + 1, "test")
    log.info("MNIST from %s: %d training, %d test digits -> bw %d, L %d, train %s, test %s",
             args.source, len(tr_lab), len(te_lab), args.bw, args.lmax,
             "rotated" if args.rotate_train else "not rotated", "rotated" if args.rotate_test else "not rotated")
    paths = prepare_mnist(tr_img, tr_lab, args.out_dir, bw=args.bw, lmax=args.lmax, quadrature=args.quadrature,
                          val_fraction=args.val_fraction, rotate_train=args.rotate_train,
                          rotate_test=args.rotate_test, seed=args.seed, test_images=te_img,
                          test_labels=te_lab, chunk=args.rotation_chunk, source_checksums=checksums)
    for split, p in paths.items():
        log.info("wrote %s (%s)", p, split)


def register(sub) -> None:
    p = sub.add_parser("prepare-mnist", help="project MNIST onto the sphere, transform, write train/val/test HDF5")
    p.add_argument("--source", default="embedded",
                   help="'embedded' (digits shipped with holovae) or a directory with the four MNIST IDX files")
    p.add_argument("--out-dir", required=True, help="writes train.h5, val.h5, test.h5 here")
    p.add_argument("--bw", type=int, default=30, help="Driscoll-Healy bandwidth of the projection grid")
    p.add_argument("--lmax", type=int, default=10, help="maximum degree of the spherical Fourier transform (paper: 10)")
    p.add_argument("--quadrature", default="lstsq-weights", choices=["lstsq-weights", "dh", "lstsq"],
                   help="lstsq-weights: the authors' least-squares quadrature weights (default); dh: Driscoll-Healy "
                        "weights; lstsq: an unweighted least-squares fit of the coefficients (not the authors')")
    p.add_argument("--rotate-train", action="store_true", help="the 'R' training variant")
    p.add_argument("--rotate-test", action="store_true", help="rotate the test digits (the paper tests on rotated digits)")
    p.add_argument("--rotation-chunk", type=int, default=10, help="consecutive digits sharing one random rotation")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of the training digits held out for validation")
    p.add_argument("--n-train", type=int, default=None, help="random subset of the training digits")
    p.add_argument("--n-test", type=int, default=None, help="random subset of the test digits")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and the rotations")
    p.set_defaults(func=run)
