"""`holovae table`: one of the paper's tables, ours beside the paper's numbers (CSV + Markdown)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("holovae")


def run(args) -> None:
    from ..report.evals import load_eval
    from ..report.tables import build_table, get_spec
    from ..report.writers import write_table

    spec = get_spec(args.name)  # an unknown name fails before any file is read
    # Check keys here too, so the error names the file rather than just the variant.
    evals = [load_eval(p, spec.needs, spec.name) for p in args.eval]
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
    t.add_argument("name", help="table1_mnist, tableS1, tableS3, tableS8_mnist or tableS9_mnist")
    t.add_argument("--eval", nargs="+", action="extend", required=True, metavar="JSON",
                   help="eval JSON files written by `holovae evaluate` (those not in this table are skipped)")
    t.add_argument("--out", default=None,
                   help="output CSV (Markdown written beside it as .md); default results/tables/NAME.csv")
    t.set_defaults(func=run)
