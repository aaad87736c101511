"""Writing coefficients to HDF5: gzip-4 (holovae's codec before) vs uncompressed chunks (now).

Data: protein-neighbourhood coefficients (L = 6, n_max = 20: 1,708 floats per row) of the
structures shipped with holovae, tiled to ``rows``; the same ~1 MB chunks either way. Records
rows written per second (``hdf5_write_L6``) and rows read per second (``hdf5_read_L6``), with
the file sizes in the config.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

CONFIG = dict(rows=8000, lmax=6, n_max=20, repeats=3)


def _coefficients(rows: int) -> np.ndarray:
    from holovae.data.embedded import embedded_structure_paths
    from holovae.data.featurize import featurize_structures

    x = featurize_structures(embedded_structure_paths()[:3], lmax=CONFIG["lmax"], n_max=CONFIG["n_max"],
                             radial="authors", normalization="square", secondary="none").coefficients
    return np.resize(x.astype(np.float32), (rows, x.shape[1]))


def _time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(out_dir, device: str = "cpu") -> list[dict]:
    x = _coefficients(CONFIG["rows"])
    rows = max(1, (1 << 18) // x.shape[1])
    codecs = {"gzip4": dict(compression="gzip", compression_opts=4), "none": {}}
    write, read, size = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in codecs.items():
            path = Path(tmp) / f"{name}.h5"

            def w():
                with h5py.File(path, "w") as f:
                    f.create_dataset("coefficients", data=x, chunks=(rows, x.shape[1]), **kw)

            def r():
                with h5py.File(path, "r") as f:
                    f["coefficients"][()]
            write[name], read[name] = _time(w, CONFIG["repeats"]), _time(r, CONFIG["repeats"])
            size[name] = path.stat().st_size
    cfg = dict(CONFIG, dim=x.shape[1], bytes_gzip4=size["gzip4"], bytes_none=size["none"])
    n = len(x)
    return [record("hdf5_write_L6", cfg, n / write["gzip4"], n / write["none"], device, out_dir, unit="rows/s"),
            record("hdf5_read_L6", cfg, n / read["gzip4"], n / read["none"], device, out_dir, unit="rows/s")]
