"""`holovae merge`: concatenate HDF5 shards (same irreps and transform) into one file."""
from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import write_text_atomic

log = logging.getLogger("holovae")


def _merge_tsv(inputs, out) -> int:
    """Concatenate TSVs keeping one header; atomic. Returns the number of data rows."""
    header, rows = None, []
    for p in inputs:
        lines = Path(p).read_text().splitlines()
        if not lines:
            continue
        header = header or lines[0]
        rows += lines[1:]
    write_text_atomic(out, "\n".join(([header] if header else []) + rows) + "\n")
    return len(rows)


def run(args) -> None:
    from ..data.hdf5 import concatenate_datasets

    path = concatenate_datasets(args.shards, args.out)
    log.info("wrote %s from %d shards", path, len(args.shards))
    if args.skipped_out:
        n = _merge_tsv(args.skipped, args.skipped_out)
        log.info("wrote %s (%d skipped files/residues)", args.skipped_out, n)


def register(sub) -> None:
    p = sub.add_parser("merge", help="concatenate HDF5 shards (same irreps and transform) into one file")
    p.add_argument("shards", nargs="+", help="HDF5 files written by prepare-structures (or any holovae dataset)")
    p.add_argument("--out", required=True, help="the merged HDF5 (written atomically)")
    p.add_argument("--skipped", nargs="*", default=[], help="the shards' skipped.tsv files, concatenated into --skipped-out")
    p.add_argument("--skipped-out", default=None, help="where to write the concatenated skipped lists")
    p.set_defaults(func=run)
