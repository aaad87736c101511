"""`holovae table`: one of the paper's tables, ours beside the paper's numbers (CSV + Markdown)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("holovae")


def run(args) -> None:
    from ..report.evals import check_eval, load_eval
    from ..report.tables import build_table, get_spec
    from ..report.writers import write_table

    spec = get_spec(args.name)  # an unknown name fails before any file is read
    # Check keys here too, so the error names the file rather than just the variant; evals of
    # another dataset (protein neighbourhoods for an MNIST table, ...) are skipped unchecked.
    evals = []
    for path in args.eval:
        ev = load_eval(path, ("dataset",), spec.name)
        if spec.applies(ev):
            check_eval(ev, spec.needs, str(path), spec.name)
        evals.append(ev)
    table = build_table(spec.name, evals)
    out = Path(args.out) if args.out else Path("results/tables") / f"{spec.name}.csv"
    md = out.with_suffix(".md")
    write_table(table.rows, out, md, spec.title, spec.caption, columns=spec.columns,
                footer=table.footer, labels=spec.labels, formats=spec.formats)
    if not table.rows:
        log.warning("%s: none of the %d evals is a variant of this table", spec.name, len(evals))
    log.info("%s: %d rows -> %s, %s", spec.name, len(table.rows), out, md)


def register(sub) -> None:
    t = sub.add_parser("table", help="a table of the paper: our numbers beside the paper's (CSV + Markdown)")
    from ..report.tables import TABLES

    t.add_argument("name", help="which table: " + ", ".join(sorted(TABLES)))
    t.add_argument("--eval", nargs="+", action="extend", required=True, metavar="JSON",
                   help="eval JSON files written by `holovae evaluate` (those not in this table are skipped)")
    t.add_argument("--out", default=None,
                   help="output CSV (Markdown written beside it as .md); default results/tables/NAME.csv")
    t.set_defaults(func=run)
