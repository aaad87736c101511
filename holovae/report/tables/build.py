"""Building a registered table: its rows (the builder's, in the spec's column order) and footer."""
from __future__ import annotations

from typing import Callable

from ..evals import check_evals
from ..paper import load_paper
from .registry import Table, get_spec

__all__ = ["build_table", "classifier_notes", "table_rows"]


def build_table(name: str, evals: list[dict], paper: list[dict] | None = None) -> Table:
    """Check ``evals`` carry the keys table ``name`` reads, build its rows and footer."""
    spec = get_spec(name)
    check_evals(evals, ("dataset",), name)   # every eval: needed to tell which table it is for
    evals = [e for e in evals if spec.applies(e)]
    check_evals(evals, spec.needs, name)
    if paper is None:
        paper = load_paper(spec.paper_csv) if spec.paper_csv else []
    built = spec.build(evals, paper)
    rows = [{c: r.get(c) for c in spec.columns} for r in built.rows]  # fixed column order
    lines = list(built.notes) + classifier_notes(evals)
    if built.not_run:
        lines.append("Paper rows not run here: " + "; ".join(built.not_run) + ".")
    elif spec.paper_csv:
        lines.append("Every paper row of this table has a run here.")
    return Table(spec, rows, "\n\n".join(lines))


def classifier_notes(evals: list[dict]) -> list[str]:
    """How the latent classifiers of these evals were fitted (docs/fidelity.md#evaluation)."""
    fits = sorted({e["knn_fit"] for e in evals if e.get("knn_fit")})
    scaling = sorted({bool(e["lc_standardize"]) for e in evals if "lc_standardize" in e})
    parts = []
    if fits:
        parts.append("KNN (scikit-learn's defaults) fitted on the " +
                     " / ".join({"train+val": "training + validation", "train": "training"}[f] for f in fits) +
                     " latents")
    if scaling:
        parts.append("linear classifier on " + " / ".join("standardised z" if v else "z as it is" for v in scaling))
    notes = []
    if parts:
        notes.append("Classifiers: " + "; ".join(parts) + " (the authors' protocol is training + validation "
                     "latents, z as it is: docs/fidelity.md#evaluation).")
    quadratures = sorted({e["quadrature"] for e in evals if e.get("quadrature")})
    if quadratures:
        names = {"lstsq-weights": "the authors' least-squares quadrature weights", "dh": "Driscoll-Healy quadrature",
                 "lstsq": "an unweighted least-squares fit (not the authors')"}
        notes.append("Spherical Fourier transform: " + " / ".join(names.get(q, q) for q in quadratures) +
                     " (docs/fidelity.md#transform).")
    return notes


def table_rows(name: str, doc: str) -> Callable[..., list[dict]]:
    """The public builder of table ``name``: ``f(evals, paper=None) -> rows`` (``doc``: its docstring)."""
    def rows(evals, paper=None) -> list[dict]:
        return build_table(name, evals, paper).rows

    rows.__name__ = rows.__qualname__ = name
    rows.__doc__ = doc
    return rows
