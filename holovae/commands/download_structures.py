"""`holovae download-structures`: ProteinNet ID lists -> train/val/test lists and one mmCIF.gz per PDB entry.

The work is :mod:`holovae.data.proteinnet`. IDs come from ``--ids`` (ProteinNet record files,
optionally gzipped, or plain lists, one ID a line) and from ``--training``/``--validation``
(ProteinNet record files, e.g. ``casp12/training_30`` and ``casp12/validation``). Each may
also be one member of a tar archive, ``ARCHIVE::MEMBER``, read from the archive as a stream
without extracting it: ``--training casp12.tar.gz::casp12/training_30 --validation
casp12.tar.gz::validation`` (a MEMBER may be shortened to the end of its path when only one
member's path ends that way).

* ``--split-out DIR`` writes the paper's split: ``train.txt``/``val.txt`` (the ProteinNet
  training set split by PDB entry, ``--validation-fraction`` held out with ``--seed``) and
  ``test.txt`` (the ProteinNet validation set), one ProteinNet ID a line, plus
  ``unresolved.tsv`` (IDs naming no PDB entry); with ``--out`` also ``<split>_files.txt``, the
  downloaded files of each split (for ``holovae prepare-structures --from-list``).
* ``--out DIR`` downloads ``DIR/<pdb>.cif.gz`` for every PDB entry named (RCSB, then the
  mirrors), keeping valid files already there, and writes ``--manifest`` (pdb_id, file, sha256,
  bytes, source, status) and ``--failed`` (id, urls, reason; also the IDs naming no PDB
  entry). Failures do not stop the run; with ``--max-failures-fraction F`` the command exits 1
  when more than F of the PDB entries failed.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("holovae")


def _read(path):
    from ..data.proteinnet import read_proteinnet_ids, unique_pdb_ids

    ids = read_proteinnet_ids(path)
    log.info("%s: %d IDs naming %d PDB entries, %d naming none", path, len(ids.entries),
             len(unique_pdb_ids(ids.entries)), len(ids.unresolved))
    return ids


def run(args) -> None:
    from ..data import proteinnet as pn

    if not (args.ids or args.training or args.validation):
        raise ValueError("no IDs: give --ids and/or --training/--validation")
    if args.split_out and not args.training:
        raise ValueError("--split-out needs --training (and usually --validation): the ProteinNet files to split")
    if not (args.out or args.split_out):
        raise ValueError("nothing to do: give --out (download) and/or --split-out (split lists)")

    training = _read(args.training) if args.training else pn.IdList([], [])
    validation = _read(args.validation) if args.validation else pn.IdList([], [])
    lists = [_read(p) for p in args.ids] + [training, validation]
    entries = [e for ids in lists for e in ids.entries]
    unresolved = [u for ids in lists for u in ids.unresolved]
    if unresolved:
        log.warning("%d IDs name no PDB entry (e.g. %s: %s)%s", len(unresolved), unresolved[0].id,
                    unresolved[0].reason, f"; listed in {args.failed or 'failed.tsv'}" if args.out else "")

    splits = None
    if args.split_out:
        splits = pn.proteinnet_splits(training.entries, validation.entries, args.validation_fraction, args.seed)
        comment = (f"holovae download-structures: training {args.training}, validation {args.validation}, "
                   f"validation fraction {args.validation_fraction}, seed {args.seed}")
        pn.write_split_lists(args.split_out, splits, training.unresolved + validation.unresolved, comment)
        log.info("split lists in %s: %s", args.split_out, ", ".join(
            f"{name} {len(s)} IDs / {len(pn.unique_pdb_ids(s))} PDB entries" for name, s in splits.items()))
    if not args.out:
        return

    pdbs = pn.unique_pdb_ids(entries)
    if args.max_entries is not None:
        pdbs = pdbs[: args.max_entries]
    if not pdbs:
        raise ValueError("the ID lists name no PDB entry to download")
    manifest = Path(args.manifest) if args.manifest else Path(args.out) / "manifest.tsv"
    failed = Path(args.failed) if args.failed else Path(args.out) / "failed.tsv"
    mirrors = [] if args.no_mirrors else (args.mirror or list(pn.DEFAULT_MIRRORS))
    log.info("download-structures: %d PDB entries -> %s (%s, then %d mirrors; %d jobs)", len(pdbs), args.out,
             args.url_template, len(mirrors), args.jobs)
    report = pn.download_structures(pdbs, args.out, url_template=args.url_template, mirrors=mirrors,
                                    retries=args.retries, timeout=args.timeout, jobs=args.jobs,
                                    progress=not args.no_progress, backoff=args.backoff,
                                    previous_manifest=manifest)
    pn.write_manifest(manifest, report)
    pn.write_failed(failed, report, unresolved)
    if splits is not None:
        pn.write_split_file_lists(args.split_out, splits, report)
    log.info("%d files usable (%d downloaded now, %d already present), %d failed; manifest %s",
             len(report.files), report.n_downloaded, len(report.files) - report.n_downloaded,
             len(report.failed), manifest)
    if report.failed:
        log.warning("%d of %d PDB entries failed, e.g. %s: %s; all listed in %s", len(report.failed), len(pdbs),
                    report.failed[0].pdb, report.failed[0].reason, failed)
    limit = args.max_failures_fraction
    if limit is not None and len(report.failed) > limit * len(pdbs):
        raise RuntimeError(f"{len(report.failed)} of {len(pdbs)} PDB entries failed to download "
                           f"({len(report.failed) / len(pdbs):.1%}), more than --max-failures-fraction "
                           f"{limit}: see {failed}")


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text} is not in [0, 1]")  # argparse turns this into a usage error
    return value


def register(sub) -> None:
    from ..data.proteinnet import RCSB_URL

    p = sub.add_parser("download-structures",
                       help="ProteinNet ID lists -> train/val/test lists and one mmCIF.gz per PDB entry")
    p.add_argument("--ids", action="append", default=[], metavar="LIST",
                   help="ProteinNet record file or plain ID list (optionally .gz, or ARCHIVE::MEMBER as for "
                        "--training); repeatable")
    p.add_argument("--training", default=None, metavar="FILE",
                   help="ProteinNet training record file (e.g. casp12/training_30), or one member of a tar "
                        "archive, ARCHIVE::MEMBER, read without extracting it (casp12.tar.gz::casp12/training_30; "
                        "casp12.tar.gz::training_30 when only one member's path ends with /training_30)")
    p.add_argument("--validation", default=None, metavar="FILE",
                   help="ProteinNet validation record file (the paper's test set); also ARCHIVE::MEMBER "
                        "(casp12.tar.gz::casp12/validation or casp12.tar.gz::validation)")
    p.add_argument("--split-out", default=None, metavar="DIR",
                   help="write train.txt/val.txt/test.txt here (training split by PDB entry; validation -> test)")
    p.add_argument("--validation-fraction", type=fraction, default=0.2, metavar="F",
                   help="fraction of training PDB entries held out as val (paper: 2,730 of 13,687)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the train/val split")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder for <pdb>.cif.gz files; omit to only write split lists")
    p.add_argument("--manifest", default=None, metavar="TSV",
                   help="TSV of usable files (default OUT/manifest.tsv)")
    p.add_argument("--failed", default=None, metavar="TSV",
                   help="TSV of failures and IDs naming no PDB entry (default OUT/failed.tsv)")
    p.add_argument("--url-template", default=RCSB_URL, metavar="URL",
                   help="first URL tried; {pdb}, {PDB} (upper case), {mid} (middle two characters)")
    p.add_argument("--mirror", action="append", default=None, metavar="URL",
                   help="URL template tried after --url-template; repeatable; replaces the wwPDB/PDBe defaults")
    p.add_argument("--no-mirrors", action="store_true", help="try --url-template only")
    p.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    p.add_argument("--retries", type=int, default=3, metavar="N", help="extra tries per URL for transient errors")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per network operation")
    p.add_argument("--backoff", type=float, default=1.0, metavar="S", help="seconds before the first retry (doubling)")
    p.add_argument("--max-entries", type=int, default=None, metavar="N", help="download only the first N PDB entries")
    p.add_argument("--max-failures-fraction", type=fraction, default=None, metavar="F",
                   help="exit 1 when more than this fraction of the PDB entries failed")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.set_defaults(func=run)
