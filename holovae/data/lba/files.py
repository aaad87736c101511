"""The LBA data file: one HDF5 of pocket-residue rows (a steerable dataset every reader opens)
with the per-complex arrays in its group ``complexes/``; and the TSV of skipped complexes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...atomic import atomic_path, write_tsv_atomic
from .featurize import KIND, LBAFeaturized

__all__ = ["write_lba_dataset", "read_lba_dataset", "write_skipped"]

_GROUP = "complexes"
_PER_COMPLEX = ("complex_ids", "affinity", "n_pocket", "receptor", "ligand_file")


def write_lba_dataset(path, f: LBAFeaturized) -> Path:
    """Write ``f`` to one HDF5 file, atomically (temporary file, then ``os.replace``).

    Rows via :func:`holovae.data.hdf5.write_dataset` (``coefficients``, ``labels`` = residue
    type, ``ids``, extra ``complex_index``; attrs incl. ``skipped``), so every steerable-dataset
    reader opens it; the per-complex arrays go in the group ``complexes/``.
    """
    import h5py

    from ..hdf5 import write_dataset

    path = Path(path)
    with atomic_path(path, suffix=".lba.tmp") as tmp:
        write_dataset(tmp, f.coefficients, f.irreps, labels=f.residue_labels, ids=f.ids,
                      attrs={**f.attrs, "skipped": [[str(a), str(b)] for a, b in f.skipped]},
                      extra={"complex_index": f.complex_index})
        with h5py.File(tmp, "a") as h:
            g = h.create_group(_GROUP)
            for name in _PER_COMPLEX:
                arr = np.asarray(getattr(f, name))
                if arr.dtype.kind == "U":
                    g.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype())
                else:
                    g.create_dataset(name, data=arr)
    return path


def read_lba_dataset(path) -> LBAFeaturized:
    """Read a file written by :func:`write_lba_dataset`. Raises
    :class:`~holovae.data.hdf5.DatasetFormatError` naming the file when it is not one (no
    ``complexes`` group, inconsistent per-complex arrays)."""
    import h5py

    from ..hdf5 import DatasetFormatError, read_dataset

    path = Path(path)
    d = read_dataset(path)
    if d.attrs.get("kind") != KIND or "complex_index" not in d.extra:
        raise DatasetFormatError(f"{path}: not an LBA pocket dataset (kind={d.attrs.get('kind')!r})")
    with h5py.File(path, "r") as h:
        if _GROUP not in h or any(name not in h[_GROUP] for name in _PER_COMPLEX):
            raise DatasetFormatError(f"{path}: missing group {_GROUP!r} or one of its datasets {_PER_COMPLEX}")
        g = h[_GROUP]
        per = {name: (np.asarray(g[name].asstr()[()], dtype=str) if g[name].dtype.kind in ("O", "S") else g[name][()])
               for name in _PER_COMPLEX}
    m = len(per["complex_ids"])
    index = d.extra.pop("complex_index").astype(np.int64)
    in_range = bool(((index >= 0) & (index < m)).all())
    if any(len(v) != m for v in per.values()) or not in_range or \
            not np.array_equal(np.bincount(index, minlength=m), per["n_pocket"]):
        raise DatasetFormatError(f"{path}: per-complex arrays disagree with complex_index "
                                 f"({m} complexes, {len(index)} rows)")
    attrs = dict(d.attrs)
    skipped = [tuple(row) for row in attrs.pop("skipped", [])]
    return LBAFeaturized(coefficients=d.coefficients.numpy(), irreps=d.irreps, complex_index=index,
                         ids=[] if d.ids is None else d.ids.tolist(),
                         residue_labels=np.zeros(len(d), np.int64) if d.labels is None else d.labels,
                         skipped=skipped, attrs=attrs, **per)


def write_skipped(path, skipped) -> Path:
    """``complex, reason`` rows as TSV, written atomically (tabs/newlines in reasons escaped)."""
    return write_tsv_atomic(path, ("complex", "reason"), skipped)
