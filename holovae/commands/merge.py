"""`holovae merge`: concatenate HDF5 shards (same irreps and transform) into one file.

Shards without any row make the merge fail, naming them: a split of 0 rows would be marked
done here and fail much later (``torch.cat`` of nothing in ``embed``)."""
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


def refuse_empty_shards(shards, out) -> None:
    """``ValueError`` naming ``out`` and the shards when together they hold no row."""
    import h5py

    from ..data.hdf5 import read_irreps

    for p in shards:
        read_irreps(p)                       # a clear error for a missing or foreign file
    rows = []
    for p in shards:
        with h5py.File(p, "r") as f:
            rows.append(int(f["coefficients"].shape[0]) if "coefficients" in f else 0)
    if sum(rows) == 0:
        raise ValueError(f"{out}: its {len(shards)} shard(s) hold no row ({', '.join(map(str, shards[:5]))}"
                         f"{', ...' if len(shards) > 5 else ''}): refusing to write an empty dataset; see the "
                         "shards' skipped lists")


def run(args) -> None:
    from ..data.hdf5 import concatenate_datasets

    refuse_empty_shards(args.shards, args.out)
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
