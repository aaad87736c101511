"""`holovae scorecard`: every paper number a run reproduced, beside ours, with a verdict."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("holovae")


def run(args) -> None:
    from ..atomic import write_text_atomic
    from ..report.scorecard import render_scorecard

    sources = {}
    for pair in args.source:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--source expects DATASET=TEXT, got {pair!r}")
        sources[key.strip()] = text.strip()
    missing = [p for p in args.tables if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"tables not found: {', '.join(map(str, missing))}")
    page = render_scorecard(args.tables, sources)
    write_text_atomic(Path(args.out), page)
    log.info("scorecard of %d tables -> %s", len(args.tables), args.out)


def register(sub) -> None:
    s = sub.add_parser("scorecard", help="the reproduction scorecard: paper numbers beside ours, with tolerances")
    s.add_argument("--tables", nargs="+", required=True, metavar="CSV",
                   help="table CSVs written by `holovae table` (columns <metric> and <metric>_paper)")
    s.add_argument("--source", action="append", default=[], metavar="DATASET=TEXT",
                   help="what the run used for a dataset, printed at the top (repeatable)")
    s.add_argument("--out", required=True, help="output Markdown (e.g. results/reproduction.md)")
    s.set_defaults(func=run)
