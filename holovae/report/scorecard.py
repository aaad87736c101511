"""The reproduction scorecard: every paper number a run could reproduce, beside ours.

Input: the tables of a run (``results/tables/<table>.csv``, columns ``<metric>`` and
``<metric>_paper``). Output: one Markdown page with a row per (table row, metric) that has both
numbers: ours, the paper's, the tolerance of that metric (stated below, widened to twice the
seed-to-seed spread where the run measured one: a ``<metric>_std`` column), ✅ / ❌, the scale
the row was run at, and the fidelity-ledger section (``docs/fidelity.md``) that explains the
known differences. A demonstration-scale run is expected to miss most numbers; the page says
what it was run on so that a ❌ reads as what it is.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .paper import paper_cell

__all__ = ["Tolerance", "TOLERANCES", "score_table", "render_scorecard", "LEDGER_SECTIONS"]


@dataclass(frozen=True)
class Tolerance:
    """``kind``: ``abs`` (|ours - paper| <= value), ``rel_abs`` (<= max(value * |paper|, floor)),
    ``rel`` (<= value * |paper|), ``decade`` (|log10(ours / paper)| <= value), ``exact``."""

    kind: str
    value: float = 0.0
    floor: float = 0.0
    why: str = ""

    def bound(self, paper: float, std: float | None = None) -> float:
        """The largest |ours - paper| (or |log10 ratio| for ``decade``) that passes."""
        if self.kind == "abs":
            b = self.value
        elif self.kind == "rel_abs":
            b = max(self.value * abs(paper), self.floor)
        elif self.kind == "rel":
            b = self.value * abs(paper)
        elif self.kind == "decade":
            return self.value
        else:
            b = 0.0
        return max(b, 2 * std) if std else b

    def passes(self, ours, paper, std: float | None = None) -> bool:
        if self.kind == "exact" or not (_number(ours) and _number(paper)):
            return _same(ours, paper)
        if self.kind == "decade":
            if ours <= 0 or paper <= 0:
                return False
            return abs(math.log10(ours / paper)) <= self.value
        return abs(ours - paper) <= self.bound(paper, std) + 1e-12

    def describe(self, paper, std: float | None = None) -> str:
        if self.kind == "exact" or not _number(paper):
            return "exact"
        if self.kind == "decade":
            return f"within {self.value:g} decade"
        b = self.bound(paper, std)
        widened = " (2 sd)" if std and 2 * std > self.bound(paper) else ""
        return f"± {b:.3g}{widened}"


_ACCURACY = Tolerance("abs", 0.03, why="accuracies, clustering and retrieval scores: ± 0.03 absolute, about the "
                      "spread between the paper's own comparable rows")
TOLERANCES: dict[str, Tolerance] = {
    **{m: _ACCURACY for m in ("lc_acc", "knn_acc", "purity", "v_measure", "p_at_n", "r_at_n", "f1_at_n", "map",
                              "ndcg")},
    "cosine": Tolerance("rel_abs", 0.2, 0.005, why="reconstruction cosine loss: ± 20% of the paper's value "
                        "(at least ± 0.005)"),
    "params": Tolerance("rel", 0.005, why="parameter counts: the paper rounds to three significant figures"),
    **{m: Tolerance("decade", 1.0, why="equivariance errors: the paper's units did not survive transcription, "
                    "so orders of magnitude only") for m in ("equiv_error_mean", "equiv_error_std",
                                                            "abs_value_mean", "abs_value_std")},
    **{m: Tolerance("exact", why="architecture: the same lists and sizes") for m in
       ("channels", "degrees", "initial_channels", "tensor_size")},
}
# timings depend on the hardware: shown in the tables, not scored
NOT_SCORED = ("train_hours", "relative_time", "seconds_per_epoch")

# which ledger sections explain a table's known differences
LEDGER_SECTIONS = {
    "table1_mnist": ("transform", "loss", "schedule", "evaluation"), "tableS1": ("transform", "loss", "evaluation"),
    "tableS3": ("evaluation",), "tableS8_mnist": ("architecture",), "tableS9_mnist": ("architecture",),
    "tableS2": ("architecture",), "tableS7": ("transform", "schedule"), "tableS9_proteins": ("architecture",),
    "tableS5": ("amino-acids", "evaluation"), "tableS6": ("amino-acids", "evaluation"),
    "tableS9_aminoacids": ("amino-acids",), "table2_lba": ("lba",), "tableS10_lba": ("lba",),
    "table1_shrec17": ("shrec17", "evaluation"), "tableS4": ("shrec17", "evaluation"),
    "tableS9_shrec17": ("architecture",),
}
LABEL_COLUMNS = ("variant", "dataset", "data", "split", "model", "tp_type", "tp", "lmax", "z", "beta", "features",
                 "regressor")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _same(a, b) -> bool:
    norm = (lambda v: str(v).replace(" ", "")) if not (_number(a) and _number(b)) else float
    return norm(a) == norm(b)


def parse_cell(text: str):
    """A CSV cell: numbers as numbers (also the paper's '227k', '1.6M'), else text, '' as None."""
    value = paper_cell(text)
    if isinstance(value, str) and len(value) > 1 and value[-1] in "kM":
        try:
            return float(value[:-1]) * (1e3 if value[-1] == "k" else 1e6)
        except ValueError:
            return value
    return value


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def score_table(name: str, rows: list[dict]) -> list[dict]:
    """One entry per (row, metric) with both our number and the paper's."""
    out = []
    for row in rows:
        label = ", ".join(f"{c} {row[c]}" for c in LABEL_COLUMNS if row.get(c) not in (None, ""))
        scale = f"{int(row['n_train']):,} training samples" if _number(row.get("n_train")) else "—"
        for col in row:
            if not col.endswith("_paper"):
                continue
            metric = col[:-len("_paper")]
            ours, paper = row.get(metric), row[col]
            if ours is None or paper is None or metric in NOT_SCORED or metric not in TOLERANCES:
                continue
            std = row.get(f"{metric}_std")
            std = float(std) if _number(std) else None
            tol = TOLERANCES[metric]
            out.append({"table": name, "row": label, "metric": metric, "ours": ours, "paper": paper,
                        "tolerance": tol.describe(paper, std), "ok": tol.passes(ours, paper, std), "scale": scale,
                        "ledger": LEDGER_SECTIONS.get(name, ())})
    return out


def _fmt(v) -> str:
    if _number(v):
        if isinstance(v, int) or float(v).is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"
    return str(v)


def render_scorecard(table_paths: Iterable, sources: dict[str, str] | None = None) -> str:
    """The Markdown page for the tables at ``table_paths`` (``<table>.csv``); ``sources`` maps a
    dataset to what the run used (e.g. ``{"MNIST": "embedded: 2,700 real training digits"}``)."""
    entries = []
    for path in sorted(Path(p) for p in table_paths):
        entries += score_table(path.stem, _read(path))
    n_ok = sum(e["ok"] for e in entries)
    lines = ["# Reproduction scorecard", "",
             "Every number of the paper that this run produced a counterpart for, beside ours. A row passes "
             "(✅) when ours lies within the stated tolerance of the paper's; the tolerances are listed at the "
             "end. Known, deliberate differences between the paper's text, the authors' code and this run are "
             "explained in the fidelity ledger, docs/fidelity.md, section by section (column *ledger*).", ""]
    if sources:
        lines += ["What this run was made of:", ""] + [f"- **{k}**: {v}" for k, v in sources.items()] + [""]
    lines += [f"**{n_ok} of {len(entries)} numbers within tolerance.**", ""]
    by_table: dict[str, list[dict]] = {}
    for e in entries:
        by_table.setdefault(e["table"], []).append(e)
    lines += ["| table | within tolerance |", "|---|---|"]
    lines += [f"| {t} | {sum(e['ok'] for e in es)} / {len(es)} |" for t, es in by_table.items()]
    for t, es in by_table.items():
        lines += ["", f"## {t}", "", "| row | metric | ours | paper | tolerance | | scale | ledger |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in es:
            ledger = ", ".join(f"[{s}](docs/fidelity.md#{s})" for s in e["ledger"]) or "—"
            lines.append(f"| {e['row']} | {e['metric']} | {_fmt(e['ours'])} | {_fmt(e['paper'])} | {e['tolerance']} "
                         f"| {'✅' if e['ok'] else '❌'} | {e['scale']} | {ledger} |")
    lines += ["", "## Tolerances", ""]
    seen = set()
    for metric, tol in TOLERANCES.items():
        if tol.why not in seen:
            seen.add(tol.why)
            lines.append(f"- {tol.why}.")
    lines.append(f"- Not scored (hardware-dependent): {', '.join(NOT_SCORED)}.")
    lines.append("- Where a table carries a `<metric>_std` column (repeats with different seeds), the tolerance is "
                 "at least twice that seed-to-seed standard deviation.")
    return "\n".join(lines) + "\n"
