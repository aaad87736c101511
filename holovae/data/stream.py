"""Training rows read from an HDF5 file on demand (``train.data: stream``) instead of whole.

A *row source* gives ``len``, ``dim``, ``block_rows`` (the rows of one storage block: the
shuffle of :func:`epoch_order` keeps blocks together; ``None`` for a full shuffle),
``take(idx) -> [len(idx), dim]`` (rows in the given order) and ``slice(a, b)``.
:class:`TensorRows` wraps an in-memory tensor; :class:`H5Rows` reads a ``coefficients``
dataset written by :func:`holovae.data.hdf5.write_dataset` row by row: uncompressed data with
one ``pread`` per run of consecutive rows at offsets computed from the chunk index (no HDF5 call
per batch, the GIL released while reading), other layouts (gzip of older files) through h5py with
a chunk cache. :class:`Prefetcher` runs the reads in a background thread, a few batches ahead.

:func:`epoch_order` (seeded, one generator draw per epoch, so a resumed run continues the same
sequence) shuffles the order of the blocks, then the rows within windows of ``window`` blocks:
consecutive batches read from a few megabytes of the file, not from all of it.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from .hdf5 import DatasetFormatError, checked_coefficients, open_file, stored_attrs

# Rows per block of the normalising-constant pass: the same blocks in memory and streamed, and
# for any number of processes, so that the constant is bit-for-bit the same (the resume
# checkpoint's identity includes it). 1 MB of float32 per block.
SCAN_BYTES = 1 << 20


def default_block_rows(dim: int) -> int:
    """Rows of ~1 MB of float32: holovae's HDF5 chunk (``write_dataset``)."""
    return max(1, (1 << 18) // max(1, dim))


class TensorRows:
    """An in-memory ``x [N, dim]`` as a row source; ``block_rows=None`` shuffles fully."""

    def __init__(self, x: torch.Tensor, block_rows: Optional[int] = None, name: str = "data"):
        self.x, self.block_rows, self.name = x, block_rows, name

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.x[idx]

    def slice(self, a: int, b: int) -> torch.Tensor:
        return self.x[a:b]


class H5Rows:
    """The ``coefficients [N, dim]`` of an HDF5 file, read on demand (float32 rows).

    Checks the file as :func:`~holovae.data.hdf5.read_dataset` does (errors name the file)
    except for NaN/inf, which :func:`scan` finds in its pass over the rows. ``rows_read``
    counts the rows read so far (a process reads only its shards).
    """

    def __init__(self, path, expected_irreps=None):
        self.path = Path(path)
        self.name = str(self.path)
        with open_file(self.path) as f:
            self.irreps, d = checked_coefficients(f, self.path, expected_irreps)
            self.n, self._dim, self.dtype = d.shape[0], d.shape[1], d.dtype
            self.attrs = stored_attrs(f)
            self.block_rows = d.chunks[0] if d.chunks else default_block_rows(self._dim)
            self._offsets = _row_block_offsets(d) if self.n else None
        self.rows_read = 0
        self._fd: Optional[int] = None
        self._h5 = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def direct(self) -> bool:
        """Whether rows are read with ``pread`` (uncompressed float data with known offsets)."""
        return self._offsets is not None

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any order, no repeats needed) as float32 ``[len(idx), dim]``."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"{self.path}: row index out of range [0, {self.n})")
        order = np.argsort(idx, kind="stable")
        rows = self._read_sorted(idx[order])
        out = np.empty_like(rows)
        out[order] = rows
        return torch.from_numpy(out)

    def slice(self, a: int, b: int) -> torch.Tensor:
        return torch.from_numpy(self._read_sorted(np.arange(a, b, dtype=np.int64)))

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        self.rows_read += len(idx)
        if self.direct:
            return self._pread(idx)
        with self._lock:
            if self._h5 is None:   # a chunk cache of a window of chunks: a compressed chunk is inflated once
                import h5py
                self._h5 = h5py.File(self.path, "r", rdcc_nbytes=256 << 20, rdcc_nslots=100_003)
            rows = self._h5["coefficients"][idx] if len(idx) else np.empty((0, self._dim))
        return np.asarray(rows, dtype=np.float32)

    def _pread(self, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            return np.empty((0, self._dim), dtype=np.float32)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        item = self.dtype.itemsize
        row_bytes = self._dim * item
        raw = np.empty((len(idx), self._dim), dtype=self.dtype)
        view = memoryview(raw.reshape(-1).view(np.uint8))
        block, within = np.divmod(idx, self._offsets[1])
        start = self._offsets[0][block] + within * row_bytes
        # runs of rows that are consecutive in the file (same block, next row): one read each
        breaks = np.flatnonzero((np.diff(idx) != 1) | (np.diff(block) != 0)) + 1
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
            want, pos, off = (hi - lo) * row_bytes, lo * row_bytes, int(start[lo])
            while want:   # pread may return less than asked
                got = os.preadv(self._fd, [view[pos:pos + want]], off)
                if got <= 0:
                    raise DatasetFormatError(f"{self.path}: truncated (read past the end of the file)")
                want, pos, off = want - got, pos + got, off + got
        return raw.astype(np.float32, copy=False)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _row_block_offsets(d) -> Optional[tuple[np.ndarray, int]]:
    """``(byte offset of every block of rows, rows per block)`` where rows can be read straight
    from the file: uncompressed little-endian float data, contiguous or chunked by whole rows
    with every chunk allocated. ``None`` otherwise (read through h5py)."""
    if d.dtype.byteorder == ">" or d.compression or d.dtype.itemsize not in (4, 8):
        return None
    plist = d.id.get_create_plist()
    if plist.get_nfilters():
        return None
    if d.chunks is None:
        off = d.id.get_offset()
        return None if off is None else (np.array([off], dtype=np.int64), d.shape[0])
    rows, width = d.chunks
    if width != d.shape[1]:
        return None
    n_blocks = -(-d.shape[0] // rows)
    offsets = np.full(n_blocks, -1, dtype=np.int64)
    try:
        def visit(info):
            offsets[info.chunk_offset[0] // rows] = info.byte_offset
        d.id.chunk_iter(visit)
    except (AttributeError, TypeError):   # h5py/HDF5 without chunk_iter
        for i in range(d.id.get_num_chunks()):
            info = d.id.get_chunk_info(i)
            offsets[info.chunk_offset[0] // rows] = info.byte_offset
    return None if (offsets < 0).any() else (offsets, rows)


def as_rows(x, name: str = "data"):
    """A row source: ``x`` itself when it is one, else an in-memory tensor wrapped."""
    return TensorRows(torch.as_tensor(x), name=name) if isinstance(x, (torch.Tensor, np.ndarray)) else x


def epoch_order(n: int, generator: torch.Generator, block_rows: Optional[int], window: int) -> torch.Tensor:
    """A permutation of ``range(n)``: a uniform one when ``block_rows`` is None or the data are
    one block (one ``randperm``), else blocks of ``block_rows`` rows in shuffled order, the rows shuffled within
    every ``window`` consecutive blocks of that order."""
    n_blocks = 1 if block_rows is None else -(-n // block_rows)
    if n_blocks == 1:   # the whole data in one window: a uniform shuffle, as in memory
        return torch.randperm(n, generator=generator)
    blocks = torch.randperm(n_blocks, generator=generator)
    parts = []
    for w in range(0, n_blocks, window):
        rows = torch.cat([torch.arange(b * block_rows, min(n, (b + 1) * block_rows)) for b in blocks[w:w + window].tolist()])
        parts.append(rows[torch.randperm(len(rows), generator=generator)])
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def scan_blocks(n: int, dim: int) -> list[tuple[int, int]]:
    """The fixed ``[a, b)`` row blocks of :func:`scan`."""
    step = max(1, SCAN_BYTES // (4 * max(1, dim)))
    return [(a, min(n, a + step)) for a in range(0, n, step)]


def scan(rows, fn: Callable[[torch.Tensor], float], blocks: Optional[Iterable[int]] = None,
         prefetch: int = 2) -> dict[int, float]:
    """``fn(block)`` of the blocks ``blocks`` (indices into :func:`scan_blocks`; all by default),
    read in order through a :class:`Prefetcher`; raises ``ValueError`` naming the source and rows
    at the first block with NaN/inf."""
    spans = scan_blocks(len(rows), rows.dim)
    wanted = list(range(len(spans))) if blocks is None else list(blocks)
    out = {}
    with reader(((lambda a=spans[i][0], b=spans[i][1]: rows.slice(a, b)) for i in wanted), prefetch) as it:
        for i, x in zip(wanted, it):
            bad = ~torch.isfinite(x)
            if bad.any():
                r = (torch.nonzero(bad.any(dim=1)).flatten() + spans[i][0]).tolist()
                raise ValueError(f"{rows.name}: NaN/inf coefficients in rows {r[:5]}{' ...' if len(r) > 5 else ''}")
            out[i] = fn(x)
    return out


def reader(thunks: Iterable[Callable[[], object]], prefetch: int):
    """A :class:`Prefetcher` of ``thunks`` ``prefetch`` results ahead, or with ``prefetch`` 0
    the same iteration in the calling thread (in-memory data: nothing to overlap)."""
    return Prefetcher(thunks, prefetch) if prefetch else _Inline(thunks)


class _Inline:
    def __init__(self, thunks):
        self.thunks = thunks

    def __enter__(self):
        return (t() for t in self.thunks)

    def __exit__(self, *exc):
        return False


class Prefetcher:
    """Runs ``thunks`` (callables returning a batch, or None) in a background thread, ``depth``
    results ahead; iterate it inside ``with``. An exception in a thunk is raised in the
    consumer; leaving the ``with`` early stops the thread."""

    _END = object()

    def __init__(self, thunks: Iterable[Callable[[], object]], depth: int = 3):
        self._thunks = iter(thunks)
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holovae-prefetch", daemon=True)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for thunk in self._thunks:
                if self._stop.is_set() or not self._put((thunk(), None)):
                    return
        except BaseException as exc:   # handed to the consumer
            self._put((None, exc))
            return
        self._put((self._END, None))

    def __enter__(self) -> Iterator:
        self._thread.start()
        return self._iterate()

    def _iterate(self):
        while True:
            item, exc = self._q.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item

    def __exit__(self, *exc) -> bool:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)
        return False


def open_splits(train_path, val_path, mode: str, processes: int = 1):
    """The training and validation coefficients of ``holovae train``: ``(train_x, val_x, attrs)``
    with tensors read whole (``mode`` "memory") or :class:`H5Rows` ("stream"); ``attrs`` are the
    training file's. In memory mode, warns when the splits times ``processes`` (every process
    holds a copy) exceed the memory available."""
    import logging

    from .hdf5 import read_dataset

    if mode == "stream":
        tr = H5Rows(train_path)
        return tr, H5Rows(val_path, expected_irreps=tr.irreps), tr.attrs
    need = sum(_coefficient_bytes(p) for p in (train_path, val_path)) * processes
    avail = _available_memory()
    if avail is not None and need > avail:
        logging.getLogger(__name__).warning(
            "the training and validation coefficients take %.1f GB in memory (x %d processes), more than the "
            "%.1f GB available: consider train.data=stream", need / 1e9, processes, avail / 1e9)
    tr = read_dataset(train_path)
    va = read_dataset(val_path, expected_irreps=tr.irreps)
    return tr.coefficients, va.coefficients, tr.attrs


def _coefficient_bytes(path) -> int:
    try:
        with open_file(path) as f:
            d = f["coefficients"]
            return int(np.prod(d.shape)) * 4
    except Exception:   # read_dataset reports a bad file with a better message
        return 0


def _available_memory() -> Optional[int]:
    """MemAvailable of /proc/meminfo in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
