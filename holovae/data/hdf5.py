"""HDF5 files of steerable tensors: the format every stage reads and writes.

One file per split (or shard)::

    coefficients   float32 [N, dim]   e3nn ``mul x ir`` order
    labels         [N]                optional (any numeric dtype)
    ids            str [N]            optional
    <extra>        [N, ...]           optional, e.g. ``rotations [N, 3, 3]``
    attrs: irreps (str), holovae_version (str), format (str), and the caller's attributes
           (transform parameters, source checksums, ...), each JSON-encoded.

Files are written atomically (temporary file in the same directory, then ``os.replace``) so
that an interrupted job never leaves a file that a later stage would mistake for a result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from holovae._e3nn import o3

import holovae

from ..atomic import atomic_path

FORMAT = "holovae-steerable-v1"
# Attribute / dataset names owned by this module; callers may not override them.
_RESERVED_ATTRS = ("irreps", "holovae_version", "format")
_RESERVED_DATASETS = ("coefficients", "labels", "ids")
# Prefix of JSON-encoded caller attributes, so they never collide with ours.
_ATTR_PREFIX = "json:"


class DatasetFormatError(ValueError):
    """An HDF5 file does not hold a valid steerable-tensor dataset (message names the file)."""


@dataclass
class SteerableDataset:
    """Contents of one file: ``coefficients [N, dim]`` (float32 tensor), ``labels [N]``,
    ``ids [N]`` (str ndarray), ``extra`` datasets ``{name: [N, ...]}`` and decoded ``attrs``."""

    coefficients: torch.Tensor
    irreps: o3.Irreps
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    path: str | None = None

    def __len__(self) -> int:
        return self.coefficients.shape[0]


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _json_default(v):
    # numpy scalars/arrays (seeds, shapes, checksums computed with numpy) are common attribute values
    if isinstance(v, (np.generic, np.ndarray)):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON-serialisable")


def _irreps_str(irreps) -> str:
    return str(o3.Irreps(irreps))


def same_layout(a, b) -> bool:
    # "2x0e" and "1x0e+1x0e" give the same flat layout, so compare simplified irreps.
    return o3.Irreps(a).simplify() == o3.Irreps(b).simplify()


def write_dataset(path, coefficients, irreps, labels=None, ids=None,
                  attrs: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``coefficients [N, dim]`` (cast to float32) with their ``irreps`` to ``path``.

    ``coefficients`` is one array or a list of row blocks ``[n_i, dim]``, written in order
    without joining them. ``labels [N]`` and ``ids [N]`` (converted to str) are optional;
    ``attrs`` values must be JSON-serialisable (stored JSON-encoded); ``extra`` maps names to
    ``[N, ...]`` arrays. Raises ``ValueError`` for NaN/inf coefficients or inconsistent shapes,
    before any file is touched; on any failure the target path is left as it was.
    """
    path = Path(path)
    irreps = o3.Irreps(irreps)
    blocks = [_as_numpy(b) for b in coefficients] if isinstance(coefficients, (list, tuple)) else \
        [_as_numpy(coefficients)]
    for b in blocks:
        if b.ndim != 2 or b.shape[1] != irreps.dim:
            raise ValueError(f"{path}: coefficients must be [N, {irreps.dim}] for irreps {irreps}, "
                             f"got {'a block of ' if len(blocks) > 1 else ''}shape {b.shape}")
    blocks = [b.astype(np.float32, copy=False) for b in blocks]
    start = 0
    for b in blocks:
        if not np.isfinite(b).all():            # block by block: no temporary the size of the data
            bad = ~np.isfinite(b)
            rows = start + np.unique(np.nonzero(bad)[0])
            raise ValueError(f"{path}: refusing to write non-finite coefficients ({int(bad.sum())} NaN/inf "
                             f"values in {rows.size} rows, first rows {rows[:5].tolist()})")
        start += b.shape[0]
    n = start
    datasets: dict[str, np.ndarray] = {}
    if labels is not None:
        datasets["labels"] = _as_numpy(labels)
    if ids is not None:
        datasets["ids"] = np.asarray([str(i) for i in ids], dtype=object)
    for name, arr in (extra or {}).items():
        if name in _RESERVED_DATASETS:
            raise ValueError(f"{path}: extra dataset name {name!r} is reserved")
        arr = _as_numpy(arr)
        # numpy unicode arrays (what read_dataset returns for strings) -> variable-length str
        datasets[name] = arr.astype(object) if arr.dtype.kind == "U" else arr
    for name, arr in datasets.items():
        if arr.ndim == 0 or arr.shape[0] != n:
            raise ValueError(f"{path}: dataset {name!r} has shape {arr.shape}, expected first dim {n}")
    encoded = {}
    for key, value in (attrs or {}).items():
        if key in _RESERVED_ATTRS:
            raise ValueError(f"{path}: attribute name {key!r} is reserved")
        try:
            encoded[_ATTR_PREFIX + key] = json.dumps(value, sort_keys=True, default=_json_default)
        except TypeError as e:
            raise ValueError(f"{path}: attribute {key!r} is not JSON-serialisable: {e}") from None

    import h5py  # local: keeps `import holovae.data` light

    with atomic_path(path) as tmp:
        # a chunk cache of several chunks: a block that ends inside a chunk leaves it in the cache
        # for the next block to complete (with the default 1 MB, it is written and read back)
        with h5py.File(tmp, "w", rdcc_nbytes=32 << 20) as f:
            f.attrs["format"] = FORMAT
            f.attrs["irreps"] = _irreps_str(irreps)
            f.attrs["holovae_version"] = holovae.__version__
            for key, value in encoded.items():
                f.attrs[key] = value
            dim = irreps.dim
            if n:
                # ~1 MB chunks: small enough that reading a mini-batch does not inflate a huge chunk.
                # Uncompressed, by measurement (`benchmarks/run.py --only hdf5_codec`): gzip-4 saved
                # 17% of the size of protein coefficients but wrote 59x and read 15x slower (lzf:
                # 10% for ~20x) -- compressing cost more than the Zernike transform itself.
                rows = max(1, min(n, (1 << 18) // max(1, dim)))
                if len(blocks) == 1:
                    f.create_dataset("coefficients", data=blocks[0], chunks=(rows, dim))
                else:
                    dset = f.create_dataset("coefficients", shape=(n, dim), dtype=np.float32, chunks=(rows, dim))
                    start = 0
                    for b in blocks:
                        dset[start:start + b.shape[0]] = b
                        start += b.shape[0]
            else:
                f.create_dataset("coefficients", data=np.zeros((0, dim), np.float32))
            for name, arr in datasets.items():
                if arr.dtype == object:
                    f.create_dataset(name, data=arr, dtype=h5py.string_dtype())
                else:
                    f.create_dataset(name, data=arr)
    return path


def open_file(path):
    """The HDF5 file at ``path`` opened for reading; ``FileNotFoundError`` or
    :class:`DatasetFormatError` naming the file when it is missing, not HDF5, truncated or corrupt."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise DatasetFormatError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:   # a truncated or corrupt file passes is_hdf5 (the signature is intact)
        raise DatasetFormatError(f"{path}: cannot open the HDF5 file, truncated or corrupt ({exc})") from None


def stored_irreps(f, path) -> o3.Irreps:
    """The ``irreps`` attribute of an open file (error naming ``path`` if missing or invalid)."""
    if "irreps" not in f.attrs:
        raise DatasetFormatError(f"{path}: missing attribute 'irreps'")
    raw = f.attrs["irreps"]
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        return o3.Irreps(raw)
    except Exception as e:  # e3nn raises ValueError/AssertionError depending on the input
        raise DatasetFormatError(f"{path}: attribute 'irreps' = {raw!r} is not a valid irreps: {e}") from None


def read_irreps(path) -> o3.Irreps:
    """The irreps stored in a file, without reading the data."""
    with open_file(path) as f:
        return stored_irreps(f, path)


def read_dataset(path, expected_irreps=None) -> SteerableDataset:
    """Read a file written by :func:`write_dataset`.

    Raises ``FileNotFoundError`` or :class:`DatasetFormatError` (a ``ValueError``) naming the
    file for: not HDF5, missing ``coefficients`` or ``irreps``, wrong shapes, and irreps that
    differ from ``expected_irreps`` (both are named).
    """
    path = Path(path)
    try:
        return _read(path, expected_irreps)
    except FileNotFoundError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:   # h5py's errors on damaged data
        raise DatasetFormatError(f"{path}: cannot read the HDF5 file, truncated or corrupt ({exc})") from None


def checked_coefficients(f, path, expected_irreps=None):
    """``(irreps, f["coefficients"])`` of an open file, unread, once the layout is checked:
    irreps stored and equal to ``expected_irreps`` (if given), the dataset present, ``[N, dim]``
    and floating point. Raises :class:`DatasetFormatError` naming ``path``."""
    irreps = stored_irreps(f, path)
    if expected_irreps is not None and not same_layout(irreps, expected_irreps):
        raise DatasetFormatError(f"{path}: irreps mismatch: file has {irreps}, "
                                 f"expected {o3.Irreps(expected_irreps)}")
    if "coefficients" not in f:
        raise DatasetFormatError(f"{path}: missing dataset 'coefficients'")
    x = f["coefficients"]
    if x.ndim != 2 or x.shape[1] != irreps.dim:
        raise DatasetFormatError(f"{path}: dataset 'coefficients' has shape {x.shape}, "
                                 f"expected [N, {irreps.dim}] for irreps {irreps}")
    if x.dtype.kind != "f":
        raise DatasetFormatError(f"{path}: dataset 'coefficients' has dtype {x.dtype}, expected floating point")
    return irreps, x


def stored_attrs(f) -> dict:
    """The caller attributes of an open file (JSON-decoded), with ``holovae_version``."""
    attrs = {k[len(_ATTR_PREFIX):]: json.loads(v) for k, v in f.attrs.items() if k.startswith(_ATTR_PREFIX)}
    attrs["holovae_version"] = str(f.attrs.get("holovae_version", ""))
    return attrs


def _read(path: Path, expected_irreps) -> SteerableDataset:
    with open_file(path) as f:
        irreps, x = checked_coefficients(f, path, expected_irreps)
        n = x.shape[0]
        values = np.asarray(x[()], dtype=np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise DatasetFormatError(f"{path}: {int(bad.sum())} NaN/inf coefficients in {rows.size} rows "
                                     f"(first rows {rows[:5].tolist()})")
        coefficients = torch.from_numpy(values)
        arrays: dict[str, np.ndarray] = {}
        for name in f:
            if name == "coefficients":
                continue
            d = f[name]
            if not hasattr(d, "shape"):
                continue  # a group: not ours, ignore
            if d.ndim == 0 or d.shape[0] != n:
                raise DatasetFormatError(f"{path}: dataset {name!r} has shape {d.shape}, expected first dim {n}")
            if d.dtype.kind in ("O", "S"):
                arrays[name] = np.asarray(d.asstr()[()], dtype=str)
            else:
                arrays[name] = d[()]
        attrs = stored_attrs(f)
    return SteerableDataset(coefficients=coefficients, irreps=irreps,
                            labels=arrays.pop("labels", None), ids=arrays.pop("ids", None),
                            attrs=attrs, extra=arrays, path=str(path))


# Per-file counts of the preparation step, summed when shards are merged. Only these: other
# "n_" attributes (n_max, n_channels) are transform parameters and must agree.
SUMMED_COUNTS = ("n_files", "n_files_ok", "n_skipped_rows", "n_hull_fallback")


def concatenate_datasets(paths, out, attrs: Mapping[str, Any] | None = None) -> Path:
    """Concatenate the rows of several files (e.g. the shards of one split) into ``out``.

    Every file must have the same irreps and the same datasets; the transform attributes are
    taken from the first file and must agree in every other one, except the per-source
    bookkeeping (``source_sha256`` dicts are merged, the counts of :data:`SUMMED_COUNTS` summed;
    transform parameters such as ``n_max`` must agree like every other attribute). ``attrs`` adds or
    overrides attributes. Raises :class:`DatasetFormatError` naming the disagreeing file.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError(f"{out}: nothing to concatenate")
    seen: dict[Path, Path] = {}
    for p in paths:
        if p.resolve() in seen:
            raise ValueError(f"{out}: {p} is given twice (as {seen[p.resolve()]}): its rows would be duplicated")
        seen[p.resolve()] = p
    parts = [read_dataset(p) for p in paths]
    if first_ids := [d.ids for d in parts if d.ids is not None]:
        ids = np.concatenate(first_ids)
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = str(unique[counts > 1][0])
            owners = [str(p) for p, d in zip(paths, parts) if d.ids is not None and dup in set(d.ids)]
            raise DatasetFormatError(f"{out}: {int((counts > 1).sum())} row ids repeat across the inputs, "
                                     f"e.g. {dup!r} in {', '.join(owners)} (the same shard twice?)")
    first = parts[0]
    merged_attrs = {k: v for k, v in first.attrs.items() if k != "holovae_version"}
    for p, d in zip(paths[1:], parts[1:]):
        if not same_layout(d.irreps, first.irreps):
            raise DatasetFormatError(f"{p}: irreps {d.irreps} differ from {paths[0]}'s {first.irreps}")
        if set(d.extra) != set(first.extra) or (d.labels is None) != (first.labels is None):
            raise DatasetFormatError(f"{p}: datasets {sorted(d.extra)} differ from {paths[0]}'s {sorted(first.extra)}")
        for key, value in d.attrs.items():
            if key == "holovae_version":
                continue
            if key == "source_sha256" and isinstance(value, dict):
                merged_attrs.setdefault(key, {}).update(value)
            elif key in SUMMED_COUNTS and isinstance(value, int):
                merged_attrs[key] = merged_attrs.get(key, 0) + value
            elif key.endswith("_used") and isinstance(value, dict):
                used = merged_attrs.setdefault(key, {})
                for k, v in value.items():
                    used[k] = used.get(k, 0) + v
            elif merged_attrs.get(key) != value:
                raise DatasetFormatError(f"{p}: attribute {key!r} = {value!r} differs from "
                                         f"{paths[0]}'s {merged_attrs.get(key)!r}")
    merged_attrs["concatenated_from"] = [str(p) for p in paths]
    merged_attrs.update(attrs or {})
    cat = lambda arrays: np.concatenate(arrays) if arrays else None  # noqa: E731
    return write_dataset(
        out, torch.cat([d.coefficients for d in parts]), first.irreps,
        labels=cat([d.labels for d in parts]) if first.labels is not None else None,
        ids=cat([d.ids for d in parts]) if first.ids is not None else None,
        attrs=merged_attrs, extra={k: cat([d.extra[k] for d in parts]) for k in first.extra})
