"""CSV and Markdown output of table rows, both written atomically."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ..atomic import write_text_atomic

# Our equivariance numbers span many orders of magnitude (1e-7 in float64 up to 1e-1 for a
# non-equivariant decoder), so they are printed in scientific notation. The paper's columns
# (suffix _paper) keep their transcribed form.
SCI_PREFIXES = ("equiv_", "abs_value_", "latent_invariance")


def default_format(column: str) -> str | None:
    """'%.1e' for our equivariance columns, None (see :func:`format_value`) otherwise."""
    if column.startswith(SCI_PREFIXES) and not column.endswith("_paper"):
        return "%.1e"
    return None


def format_value(value, fmt: str | None = None) -> str:
    """One cell as text: None -> '', ints as is, floats to 3 significant digits (or ``fmt``)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if fmt is not None:
        return fmt % value
    if not math.isfinite(value) or value == 0:
        return str(value) if value else "0"
    if abs(value) >= 1000:  # seconds per epoch and the like: no '1.23e+03'
        return f"{value:.0f}"
    return f"{value:.3g}"


def _columns(rows, columns):
    if columns is not None:
        return list(columns)
    seen = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_csv(rows, columns, formats) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([format_value(row.get(c), formats.get(c)) for c in columns])
    return buf.getvalue()


def render_markdown(rows, columns, formats, title, caption, footer="", labels=None) -> str:
    labels = labels or {}
    lines = [f"# {title}", "", caption.strip(), ""]
    lines.append("| " + " | ".join(_md_cell(labels.get(c, c)) for c in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(format_value(row.get(c), formats.get(c))) for c in columns) + " |")
    if footer.strip():
        lines += ["", footer.strip()]
    return "\n".join(lines) + "\n"


def write_table(rows, csv_path, md_path, title: str, caption: str, *, columns=None,
                footer: str = "", labels: dict | None = None, formats: dict | None = None) -> None:
    """Write ``rows`` (list of dicts) as CSV and as a Markdown table with title, caption, footer.

    ``columns`` fixes the column order (default: keys in order of first appearance; pass it
    so an empty table still has a header); ``labels`` renames Markdown headers only (the CSV
    keeps machine-readable names); ``formats`` maps a column to a %-format, overriding
    :func:`default_format`.
    """
    cols = _columns(rows, columns)
    fmts = {c: default_format(c) for c in cols}
    fmts.update(formats or {})
    write_text_atomic(Path(csv_path), render_csv(rows, cols, fmts))
    write_text_atomic(Path(md_path), render_markdown(rows, cols, fmts, title, caption, footer, labels))
