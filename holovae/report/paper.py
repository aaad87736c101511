"""The paper's numbers, packaged with holovae (``report/paper/*.csv``, see its README)."""
from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def _text(filename: str) -> str:
    return resources.files(__package__).joinpath("paper", filename).read_text(encoding="utf-8")


def paper_files() -> list[str]:
    """Names of the packaged paper CSVs."""
    return sorted(p.name for p in resources.files(__package__).joinpath("paper").iterdir()
                  if p.name.endswith(".csv"))


def paper_cell(text: str):
    """Numbers become int/float so they compare with ours; lists, '227k', labels stay text."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_paper(filename: str) -> list[dict]:
    """Rows of one packaged paper CSV (fresh dicts each call, so callers may modify them)."""
    try:
        text = _text(filename)
    except FileNotFoundError:
        raise ValueError(f"no packaged paper table {filename!r} (have: {', '.join(paper_files())})") from None
    return [{k: paper_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
