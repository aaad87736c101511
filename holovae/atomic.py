"""Atomic text outputs: a file is written to a temporary name in its folder and renamed into
place, so an interrupted run never leaves a half-written file that looks finished."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = ["atomic_path", "write_text_atomic", "write_bytes_atomic", "write_json_atomic", "write_tsv_atomic",
           "tsv_text"]


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path next to ``path`` for the caller to write (with any library:
    h5py, torch.save, ...); when the block ends without an exception it is renamed onto
    ``path`` with the permissions a plain ``open()`` would give (mkstemp's are 0600), otherwise
    removed. Creates ``path``'s folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Path(path)


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path, obj) -> Path:
    """Write ``obj`` as JSON (indented by one space, no final newline) through :func:`atomic_path`."""
    return write_text_atomic(path, json.dumps(obj, indent=1))


def write_tsv_atomic(path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write ``header`` and ``rows`` as TSV (:func:`tsv_text`) through :func:`atomic_path`."""
    return write_text_atomic(path, tsv_text(header, rows))


def tsv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """TSV text; tabs and newlines inside fields become spaces so every row stays one line."""
    lines = ["\t".join(header)]
    lines += ["\t".join(str(x).replace("\t", " ").replace("\n", " ") for x in row) for row in rows]
    return "\n".join(lines) + "\n"
