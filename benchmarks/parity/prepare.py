"""Data of the parity run: coefficients made by holovae, then written once in holovae's HDF5
and once in the file format the authors' loader reads, so that both sides train on the same
numbers.

MNIST: ``holovae prepare-mnist`` on the embedded digits (not rotated), a seeded subset; the
authors' loader (``experiments/mnist/src/utils/data/standardized_data_loading.py``) opens a
gz-pickle ``{split: {'projections', 'labels', 'rotations'}}`` of torch tensors and does not
normalise (their preprocessing divided the data by the training-set mean of
``sqrt(sum_f x_f^2 / (2 l_f + 1))``), so the pickle holds the holovae coefficients divided by
that constant -- the constant holovae's model divides its input by.

Proteins: ``holovae prepare-structures`` with the authors' transform settings, a seeded
split of the neighbourhoods; the authors' loader (``experiments/protein_neighborhoods/src/
utils/data/standardized_data_loading.py``) reads the compound dataset ``data`` (fields
``res_id``, ``zernikegram``, ``frame``, ``label``) of ``..._{training,validation}_...hdf5`` and
divides by the constant itself, so it gets the raw coefficients, permuted to their layout.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np


def power_constant(x: np.ndarray, ls: np.ndarray) -> float:
    """The authors' normalising constant: mean over rows of ``sqrt(sum_f x_f^2 / (2 l_f + 1))``
    (float64), ``x [N, dim]``, ``ls [dim]`` the degree of every coefficient."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt((x * x / (2 * ls + 1)).sum(axis=1)).mean())


def degrees_of(irreps) -> np.ndarray:
    """Degree of every flat coefficient of an e3nn ``mul x ir`` layout: ``[dim]``."""
    from e3nn import o3
    return np.concatenate([np.full(mul * ir.dim, ir.l) for mul, ir in o3.Irreps(irreps)])


def _holovae_cli(holovae: Path, args: list[str], log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(holovae), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "holovae.cli", *args], env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"holovae {args[0]} failed (exit {proc.returncode}); see {log}")


def _split_rows(n_total: int, n_train: int, n_val: int, seed: int, what: str):
    if n_train + n_val > n_total:
        raise ValueError(f"{what}: {n_total} samples < n_train {n_train} + n_val {n_val}")
    order = np.random.default_rng(seed).permutation(n_total)
    return np.sort(order[:n_train]), np.sort(order[n_train:n_train + n_val])


def _write_holovae(path: Path, ds, rows: np.ndarray, note: str) -> None:
    from holovae.data.hdf5 import write_dataset
    attrs = dict({k: v for k, v in ds.attrs.items() if k != "holovae_version"}, parity_subset=note)
    write_dataset(path, ds.coefficients[rows], ds.irreps, labels=None if ds.labels is None else ds.labels[rows],
                  ids=None if ds.ids is None else ds.ids[rows], attrs=attrs,
                  extra={k: v[rows] for k, v in ds.extra.items()})


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:16]


def _no_format_chars(p: Path) -> None:
    if any(ch in str(p) for ch in "%{}"):
        raise ValueError(f"{p}: the authors' loaders fill '%' and '{{}}' placeholders in their data path; "
                         "choose an --out without those characters")


def prepare_mnist(out: Path, holovae: Path, n_train: int, n_val: int, transform: dict, seed: int = 0) -> dict:
    """Write ``out/{train,val}.h5`` (holovae) and the authors' gz-pickle; return the manifest
    (paths, constant, the authors' data hparams)."""
    from holovae.data.hdf5 import read_dataset
    out.mkdir(parents=True, exist_ok=True)
    _no_format_chars(out)
    prepared = out / "prepared"
    if not (prepared / "val.h5").exists():
        # enough digits for n_train training and n_val validation after the 90/10 split
        n_total = max(math.ceil(n_train / 0.9), math.ceil(n_val / 0.1)) + 10
        _holovae_cli(holovae, ["prepare-mnist", "--source", "embedded", "--out-dir", str(prepared),
                               "--n-train", str(n_total), "--n-test", "10", "--bw", str(transform["bw"]),
                               "--lmax", str(transform["lmax"]), "--seed", str(seed)], out / "prepare-mnist.log")
    tr, va = read_dataset(prepared / "train.h5"), read_dataset(prepared / "val.h5")
    rows_tr, _ = _split_rows(len(tr), n_train, 0, seed, "MNIST training digits")
    rows_va, _ = _split_rows(len(va), n_val, 0, seed + 1, "MNIST validation digits")
    _write_holovae(out / "train.h5", tr, rows_tr, f"{n_train} seeded rows of prepared/train.h5")
    _write_holovae(out / "val.h5", va, rows_va, f"{n_val} seeded rows of prepared/val.h5")
    x_tr = tr.coefficients[rows_tr].numpy().astype(np.float64)
    x_va = va.coefficients[rows_va].numpy().astype(np.float64)
    c = power_constant(x_tr, degrees_of(tr.irreps))

    import torch
    def split(ds, rows, x):
        return {"projections": torch.tensor(x / c, dtype=torch.float32),
                "labels": torch.tensor(np.asarray(ds.labels[rows]), dtype=torch.long),
                "rotations": torch.tensor(np.asarray(ds.extra["rotations"][rows]), dtype=torch.float32)}
    data_keys = {"data_filepath": str(out / "authors_mnist%s-b=%d-lmax=%d-normalize=%s-quad_weights=%s.gz"),
                 "input_type": "NRNR", "cz": 10, "bw": transform["bw"], "lmax": transform["lmax"],
                 "normalize": "avg_sqrt_power", "quad_weights": True}
    suffix = "-no_rotate_train-no_rotate_test-cz=%d" % data_keys["cz"]
    path = Path(data_keys["data_filepath"] % (suffix, data_keys["bw"], data_keys["lmax"], data_keys["normalize"],
                                              data_keys["quad_weights"]))
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wb") as f:
        pickle.dump({"train": split(tr, rows_tr, x_tr), "valid": split(va, rows_va, x_va)}, f)
    tmp.replace(path)
    return {"task": "mnist", "irreps": str(tr.irreps), "perm": None, "normalizing_constant": c,
            "holovae_train": str(out / "train.h5"), "holovae_val": str(out / "val.h5"), "authors_file": str(path),
            "authors_data_keys": data_keys, "n_train": n_train, "n_val": n_val,
            "sha256_16": {"train": _digest(x_tr), "val": _digest(x_va)}}


def embedded_structures(holovae: Path) -> list[Path]:
    files = sorted((holovae / "holovae" / "data" / "embedded" / "structures").glob("*.cif.gz"))
    if not files:
        raise FileNotFoundError(f"{holovae}/holovae/data/embedded/structures: no *.cif.gz structures")
    return files


def prepare_proteins(out: Path, holovae: Path, structures: list[Path], n_train: int, n_val: int,
                     transform: dict, perm: list[int], seed: int = 0) -> dict:
    """Write ``out/{train,val}.h5`` (holovae) and the authors' two HDF5 files; return the manifest."""
    import h5py

    from holovae.data.hdf5 import read_dataset
    out.mkdir(parents=True, exist_ok=True)
    _no_format_chars(out)
    prepared = out / "prepared.h5"
    t = transform
    if not prepared.exists():
        _holovae_cli(holovae, ["prepare-structures", *map(str, structures), "--out", str(prepared),
                               "--lmax", str(t["lmax"]), "--n-max", str(t["n_max"]), "--r-max", str(t["r_max"]),
                               "--elements", ",".join(t["elements"]), "--normalization", t["normalization"],
                               "--radial", t["radial"], "--secondary", "none", "--no-progress", "--threads", "1"],
                     out / "prepare-structures.log")
    ds = read_dataset(prepared)
    rows_tr, rows_va = _split_rows(len(ds), n_train, n_val, seed, f"{prepared} neighbourhoods")
    _write_holovae(out / "train.h5", ds, rows_tr, f"{n_train} seeded rows of prepared.h5")
    _write_holovae(out / "val.h5", ds, rows_va, f"{n_val} seeded rows of prepared.h5 (disjoint from train)")
    x = ds.coefficients.numpy()
    perm = np.asarray(perm)
    data_keys = {"data_filepath": str(out / "authors_{}_zernikegrams-lmax=%d-r=%.1f-rst_normalization=%s.hdf5"),
                 "rcut": t["r_max"], "rmax": t["n_max"], "lmax": t["lmax"], "collected_lmax": t["lmax"],
                 "channels": list(t["elements"]), "rst_normalization": t["normalization"], "normalize_input": True}
    pattern = data_keys["data_filepath"] % (t["lmax"], t["r_max"], t["normalization"])
    for split, rows in (("training", rows_tr), ("validation", rows_va)):
        # holovae ids "pdb|chain|resnum|icode|resname" -> the authors' 6-field res_id
        fields = [str(i).split("|") for i in ds.ids[rows]]
        res_id = np.array([[f[4], f[0], f[1], f[2], f[3], ""] for f in fields], dtype="S16")
        rec = np.zeros(len(rows), dtype=np.dtype([("res_id", "S16", (6,)), ("zernikegram", "f4", (x.shape[1],)),
                                                  ("frame", "f4", (3, 3)), ("label", "<i4")]))
        rec["res_id"], rec["zernikegram"], rec["label"] = res_id, x[rows][:, perm], np.asarray(ds.labels[rows])
        path = Path(pattern.format(split))
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("data", data=rec)
        tmp.replace(path)
    x_tr = x[rows_tr].astype(np.float64)
    return {"task": "protein", "irreps": str(ds.irreps), "perm": perm.tolist(),
            "normalizing_constant": power_constant(x_tr, degrees_of(ds.irreps)),
            "holovae_train": str(out / "train.h5"), "holovae_val": str(out / "val.h5"),
            "authors_file": pattern, "authors_data_keys": data_keys, "n_train": n_train, "n_val": n_val,
            "n_neighbourhoods": len(ds), "structures": [p.name for p in structures],
            "sha256_16": {"train": _digest(x_tr), "val": _digest(x[rows_va])}}
