"""Atomic text outputs: a file is written to a temporary name in its folder and renamed into
place, so an interrupted run never leaves a half-written file that looks finished."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["write_text_atomic", "tsv_text"]


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` via a temporary file and
    ``os.replace``; the file gets mode 0644 (mkstemp's 0600 would surprise users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def tsv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """TSV text; tabs and newlines inside fields become spaces so every row stays one line."""
    lines = ["\t".join(header)]
    lines += ["\t".join(str(x).replace("\t", " ").replace("\n", " ") for x in row) for row in rows]
    return "\n".join(lines) + "\n"
