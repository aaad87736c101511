"""ProteinNet ID lists -> the PDB entries they name -> one checked mmCIF.gz file per entry.

The H-(V)AE protein-neighbourhood models were trained on ProteinNet CASP12: its training set,
split by us into train/validation (10,957 / 2,730 structures, ~20% validation), and the
ProteinNet validation set used as test. ProteinNet ships sequences and backbones only, so the
neighbourhoods need the full PDB entries, downloaded here.

ID formats (the line after ``[ID]`` in the ProteinNet text records, e.g. ``casp12/training_30``):

* training: ``<PDB>_<model>_<chain>`` (``1A0A_1_A``); ProteinNet's docs call the middle field
  the chain number, sidechainnet reads it as the model number, as we do.
* training, ASTRAL/SCOP domains: ``<PDB>_<domain>`` (``1JQG_d1jqga2``; ``-`` stands for ``_``
  in the domain, ``d1a0aa-``).
* validation: the same, prefixed with the sequence-identity class: ``70#1A0A_1_A``.
* testing: CASP targets ``TBM#T0865``: no PDB entry, reported as unresolved.

Plain lists (one ID per line, ``#`` comment lines) may also hold bare PDB IDs (``1a0a``) or
``<PDB>_<chain>`` (``1a0a_A``).

ProteinNet ships each CASP edition as one archive (``casp12.tar.gz``: ``casp12/training_30``,
..., ``casp12/validation``, ``casp12/testing``). A list inside a tar archive (gzip, bzip2, xz or
uncompressed) is named ``ARCHIVE::MEMBER`` (``casp12.tar.gz::casp12/training_30``) and read
straight from the archive as a stream, nothing extracted; MEMBER may be shortened to the end of
the member's path (``casp12.tar.gz::training_30``) when only one member's path ends that way.

RCSB publishes no per-file checksums, so a downloaded file is accepted when it is a complete
gzip stream whose text starts with an mmCIF ``data_`` block (an HTML error page or a truncated
answer is a failure, not a file), and :func:`write_manifest` records the sha256 of what was
accepted.
"""
from __future__ import annotations

import gzip
import logging
import os
import random
import re
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Optional, Sequence, Union

from tqdm import tqdm

from ..atomic import write_text_atomic, write_tsv_atomic
from ..download import DownloadError, download, sha256_file

__all__ = ["ProteinNetId", "UnresolvedId", "IdList", "parse_proteinnet_id", "read_proteinnet_ids",
           "split_archive_path", "ARCHIVE_SEP",
           "split_by_pdb_entry", "proteinnet_splits", "write_split_lists", "write_split_file_lists",
           "unique_pdb_ids", "structure_urls", "mmcif_gz_problem", "StructureFile", "FailedDownload",
           "DownloadReport", "download_structures", "write_manifest", "write_failed",
           "RCSB_URL", "DEFAULT_MIRRORS"]

log = logging.getLogger("holovae")

RCSB_URL = "https://files.rcsb.org/download/{pdb}.cif.gz"
# The wwPDB archive in its "divided" layout ({mid}: the middle two characters of the ID),
# served by wwPDB itself and by PDBe: tried in order when RCSB fails.
DEFAULT_MIRRORS = (
    "https://files.wwpdb.org/pub/pdb/data/structures/divided/mmCIF/{mid}/{pdb}.cif.gz",
    "https://ftp.ebi.ac.uk/pub/databases/pdb/data/structures/divided/mmCIF/{mid}/{pdb}.cif.gz",
)

_PDB = r"[1-9][0-9A-Za-z]{3}"
_PDB_MODEL_CHAIN = re.compile(rf"^({_PDB})_(\d+)_([0-9A-Za-z]+)$")
# SCOP/ASTRAL sid: d|g|e + PDB ID (lower case) + chain character + domain character
_PDB_ASTRAL = re.compile(rf"^({_PDB})_([dge][0-9a-z]{{4}}[0-9a-z._-][0-9a-z_-])$")
_PDB_CHAIN = re.compile(rf"^({_PDB})_([0-9A-Za-z]{{1,4}})$")
_PDB_ONLY = re.compile(rf"^({_PDB})$")
_CASP_TARGET = re.compile(r"^T\d{4}(-D\d+)?$")


# ------------------------------------------------------------------------------------ ID lists
@dataclass(frozen=True)
class ProteinNetId:
    """One list entry that names a PDB entry.

    ``id``: the text as written (``"70#1A0A_1_A"``); ``pdb``: lower-case 4-character PDB ID;
    ``model``/``chain``: from ``<PDB>_<model>_<chain>`` (None when the ID has none);
    ``domain``: the ASTRAL domain of ``<PDB>_<domain>`` IDs (its chain character is lower-cased
    by SCOP, so it is not turned into ``chain``); ``group``: what precedes ``#`` (the validation
    sequence-identity class ``"70"``, or a CASP class), None without ``#``.
    """

    id: str
    pdb: str
    model: Optional[int] = None
    chain: Optional[str] = None
    domain: Optional[str] = None
    group: Optional[str] = None


@dataclass(frozen=True)
class UnresolvedId:
    """A list entry that names no PDB entry: ``id`` as written, ``reason`` one line."""

    id: str
    reason: str


class IdList(NamedTuple):
    """What :func:`read_proteinnet_ids` returns: ``entries`` name PDB entries, ``unresolved`` do not."""

    entries: list
    unresolved: list


def parse_proteinnet_id(text: str) -> ProteinNetId:
    """One ID (any format in the module docstring) -> :class:`ProteinNetId`.

    Raises ValueError with a one-line reason for CASP targets and unrecognised text.
    """
    text = text.strip()
    *groups, core = text.split("#")
    group = "#".join(groups) if groups else None
    if _CASP_TARGET.match(core):
        raise ValueError(f"CASP target {core}: no PDB entry")
    if m := _PDB_MODEL_CHAIN.match(core):
        return ProteinNetId(text, m[1].lower(), model=int(m[2]), chain=m[3], group=group)
    if m := _PDB_ASTRAL.match(core):
        return ProteinNetId(text, m[1].lower(), domain=m[2].replace("-", "_"), group=group)
    if m := _PDB_CHAIN.match(core):
        return ProteinNetId(text, m[1].lower(), chain=m[2], group=group)
    if m := _PDB_ONLY.match(core):
        return ProteinNetId(text, m[1].lower(), group=group)
    raise ValueError(f"unrecognised ID format {core!r} "
                     "(expected e.g. 1A0A_1_A, 70#1A0A_1_A, 1JQG_d1jqga2, 1a0a)")


def _open_text(path: Path):
    """Text lines of ``path``; gzip is recognised by its magic bytes."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, "rt", encoding="utf-8")


def _id_lines(lines: Iterable[str]) -> Iterator[str]:
    """The ID texts of ProteinNet record lines (the line after each ``[ID]``) or of a plain list.

    The format is decided by the first line that is neither blank nor a comment: ``[ID]`` means
    records. Streams, so multi-GB record files (``training_100``) are read in constant memory.
    """
    records = None
    want_id = False
    for line in lines:
        line = line.strip()
        if records is None:
            if not line or line.startswith("#"):
                continue
            records = line == "[ID]"
        if records:
            if want_id:
                yield line
            want_id = line == "[ID]"
        elif line and not line.startswith("#"):
            yield line.split()[0]  # a trailing column or comment is not part of the ID


def _id_texts(path: Path) -> Iterator[str]:
    """The ID texts of a record file or plain list (see :func:`_id_lines`), optionally gzipped."""
    with _open_text(path) as f:
        yield from _id_lines(f)


ARCHIVE_SEP = "::"
_SHOWN_MEMBERS = 10  # member names quoted in the error for a missing member


def _member_key(name: str) -> str:
    """A tar member name as compared: no leading ``./`` or ``/``, no trailing ``/``."""
    return re.sub(r"^(\./|/)+", "", name).rstrip("/")


def split_archive_path(path) -> tuple[Path, Optional[str]]:
    """``"ARCHIVE::MEMBER"`` -> ``(Path(ARCHIVE), MEMBER)``; any other path -> ``(Path(path), None)``.

    A path that exists as written is a file even when its name holds ``::``. ARCHIVE is what
    precedes the last ``::``; MEMBER loses a leading ``./`` and a trailing ``/``.
    """
    text = os.fspath(path)
    if ARCHIVE_SEP not in text or Path(text).exists():
        return Path(text), None
    archive, _, member = text.rpartition(ARCHIVE_SEP)
    member = _member_key(member)
    if not archive or not member:
        raise ValueError(f"{text!r}: expected ARCHIVE{ARCHIVE_SEP}MEMBER, e.g. casp12.tar.gz::casp12/training_30")
    return Path(archive), member


def _binary_lines(f, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The lines of the binary file ``f``, read ``chunk`` bytes at a time.

    Used for stream-mode tar members instead of ``io.TextIOWrapper`` (which asks whether the
    member is seekable, an AttributeError in stream mode on Python 3.11) and of line iteration
    (whose 8 kB reads each copy tarfile's whole decompressed buffer: slow for large members).
    """
    rest = b""
    while block := f.read(chunk):
        *lines, rest = (rest + block).split(b"\n")
        yield from lines
    if rest:
        yield rest


def _member_ids(tar: tarfile.TarFile, info: tarfile.TarInfo, archive: Path) -> list[str]:
    """The ID texts of the member ``info`` at which the stream ``tar`` stands."""
    try:
        return list(_id_lines(line.decode("utf-8") for line in _binary_lines(tar.extractfile(info))))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{archive}{ARCHIVE_SEP}{info.name}: not a UTF-8 text file ({exc.reason})") from None


def _archive_id_texts(archive: Path, member: str) -> list[str]:
    """The ID texts of ``member`` of the tar archive ``archive``, read as a stream (nothing extracted).

    ``member`` is the member of that name (reading stops there), else the only member whose path
    ends with ``/member`` (the archive is then read to its end to make sure no other does).
    Raises ValueError naming the archive when it is not a readable tar archive, when no member
    matches (quoting the first member names) or when several do (naming them).
    """
    suffix = "/" + member
    matches, ids = [], None  # the members ending with /member; the IDs of the first
    n_files, shown = 0, []
    try:
        # stream mode: members in archive order, nothing extracted nor held in memory. The default
        # bufsize: tarfile keeps what one read decompresses and copies it on every read after
        with tarfile.open(archive, "r|*") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                n_files += 1
                if len(shown) < _SHOWN_MEMBERS:
                    shown.append(info.name)
                key = _member_key(info.name)
                if key == member:
                    return _member_ids(tar, info, archive)
                if key.endswith(suffix):
                    matches.append(info.name)
                    if ids is None:
                        ids = _member_ids(tar, info, archive)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ValueError(f"{archive}: not a readable tar archive ({type(exc).__name__}: {exc})") from None
    if len(matches) == 1:
        return ids
    if matches:
        raise ValueError(f"{archive}: {len(matches)} members end with {suffix!r}: {', '.join(matches)}; "
                         f"name one in full, e.g. {archive}{ARCHIVE_SEP}{matches[0]}")
    if not n_files:
        raise ValueError(f"{archive}: no member {member!r}: the archive holds no files")
    more = f", ... ({n_files} files in all)" if n_files > len(shown) else ""
    raise ValueError(f"{archive}: no member {member!r} or ending with {suffix!r}; "
                     f"its files: {', '.join(shown)}{more}")


def read_proteinnet_ids(path) -> IdList:
    """ProteinNet record file or plain ID list -> :class:`IdList`.

    ``path``: a file, optionally gzipped, or ``ARCHIVE::MEMBER``, one member of a tar archive
    (``casp12.tar.gz::casp12/training_30``, or ``casp12.tar.gz::training_30`` when only one
    member's path ends with ``/training_30``), streamed from the archive without extracting it
    (:func:`split_archive_path`). Every ID appears once in the output, in file order: as a
    :class:`ProteinNetId` in ``entries`` or, with its reason, as an :class:`UnresolvedId` in
    ``unresolved``. A missing file raises FileNotFoundError; a missing member, an ambiguous
    shortened member or an archive that is not a tar archive, ValueError naming the archive.
    """
    archive, member = split_archive_path(path)
    texts = _id_texts(archive) if member is None else _archive_id_texts(archive, member)
    entries, unresolved = [], []
    for text in texts:
        try:
            entries.append(parse_proteinnet_id(text))
        except ValueError as exc:
            unresolved.append(UnresolvedId(text, str(exc)))
    return IdList(entries, unresolved)


def unique_pdb_ids(entries: Iterable) -> list[str]:
    """The distinct PDB IDs of ``entries`` (:class:`ProteinNetId` or PDB ID strings), first-seen order."""
    seen = {}
    for e in entries:
        pdb = e.pdb if isinstance(e, ProteinNetId) else str(e).strip().lower()
        if not _PDB_ONLY.match(pdb):
            raise ValueError(f"not a PDB ID: {pdb!r}")
        seen.setdefault(pdb, None)
    return list(seen)


# ------------------------------------------------------------------------------------- splits
def split_by_pdb_entry(entries: Sequence[ProteinNetId], validation_fraction: float = 0.2,
                       seed: int = 0) -> tuple[list, list]:
    """``entries`` -> ``(train, validation)``, with ``round(fraction * n)`` of the n PDB entries in validation.

    All chains/domains of one PDB entry go to the same side (neighbourhoods from other chains
    of an entry would otherwise leak into validation). The entries to hold out are drawn from
    the *sorted* distinct PDB IDs with ``random.Random(seed)``, so the split depends on the set
    of entries and the seed only, not on the order of the list. Each side keeps input order.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), not {validation_fraction}")
    pdbs = sorted(unique_pdb_ids(entries))
    random.Random(seed).shuffle(pdbs)
    held_out = set(pdbs[: round(validation_fraction * len(pdbs))])
    train = [e for e in entries if e.pdb not in held_out]
    validation = [e for e in entries if e.pdb in held_out]
    return train, validation


def proteinnet_splits(training: Sequence[ProteinNetId], validation: Sequence[ProteinNetId] = (),
                      validation_fraction: float = 0.2, seed: int = 0) -> dict[str, list]:
    """The paper's splits: ProteinNet training -> ``train``/``val`` (by PDB entry), ProteinNet validation -> ``test``.

    Returns ``{"train": [...], "val": [...], "test": [...]}``. ProteinNet keeps its validation
    chains apart from training by sequence identity, not by PDB entry; entries shared with
    ``test`` are logged, not removed, so the lists stay ProteinNet's.
    """
    train, val = split_by_pdb_entry(training, validation_fraction, seed)
    splits = {"train": train, "val": val, "test": list(validation)}
    shared = set(unique_pdb_ids(validation)) & set(unique_pdb_ids(training))
    if shared:
        log.warning("%d PDB entries of the test set (ProteinNet validation) also appear in ProteinNet "
                    "training, e.g. %s", len(shared), ", ".join(sorted(shared)[:5]))
    return splits


def write_split_lists(out_dir, splits: dict, unresolved: Sequence[UnresolvedId] = (),
                      comment: str = "") -> dict[str, Path]:
    """Write ``<split>.txt`` (one ProteinNet ID per line, readable by :func:`read_proteinnet_ids`)
    for each split and ``unresolved.tsv`` (id, reason). ``comment`` (e.g. sources, seed) heads
    each list as ``#`` lines. Returns ``{split: path}``.
    """
    out_dir = Path(out_dir)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    paths = {}
    for name, entries in splits.items():
        paths[name] = out_dir / f"{name}.txt"
        write_text_atomic(paths[name], head + "".join(f"{e.id}\n" for e in entries))
    rows = ((u.id, u.reason) for u in unresolved)
    write_tsv_atomic(out_dir / "unresolved.tsv", ("id", "reason"), rows)
    return paths


# ---------------------------------------------------------------------------------- downloads
def structure_urls(pdb: str, url_template: str = RCSB_URL,
                   mirrors: Sequence[str] = DEFAULT_MIRRORS) -> list[str]:
    """The URLs to try for one PDB entry, in order: ``url_template`` then ``mirrors``.

    Templates may use ``{pdb}`` (lower-case ID), ``{PDB}`` (upper case) and ``{mid}`` (its
    middle two characters, the wwPDB archive's directory).
    """
    pdb = pdb.lower()
    urls = []
    for template in (url_template, *mirrors):
        if "{pdb}" not in template and "{PDB}" not in template:
            raise ValueError(f"URL template {template!r} names no {{pdb}} or {{PDB}}")
        try:
            urls.append(template.format(pdb=pdb, PDB=pdb.upper(), mid=pdb[1:3]))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"URL template {template!r}: only {{pdb}}, {{PDB}} and {{mid}} are known "
                             f"({type(exc).__name__}: {exc})") from None
    return urls


def mmcif_gz_problem(path) -> Optional[str]:
    """None when ``path`` is a complete gzip stream whose text starts with an mmCIF ``data_`` block;
    otherwise a one-line reason (not gzip -- e.g. an HTML page --, truncated, not mmCIF)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:2] != b"\x1f\x8b":
        kind = " (an HTML page?)" if head.lstrip()[:1] == b"<" else ""
        return f"not a gzip file{kind}: starts with {head[:40]!r}"
    try:
        with gzip.open(path, "rb") as f:
            start = f.read(1 << 12)
            while f.read(1 << 20):  # read to the end: the gzip CRC check catches corruption
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt or truncated gzip ({type(exc).__name__}: {exc})"
    # the first line that is neither blank nor a comment must open a data block
    lines = (line.strip() for line in start.splitlines())
    first = next((line for line in lines if line and not line.startswith(b"#")), b"")
    if not first.startswith(b"data_"):
        return f"gzip content is not mmCIF: starts with {start.lstrip()[:40]!r}"
    return None


@dataclass(frozen=True)
class StructureFile:
    """One usable file: ``pdb``, ``path``, ``sha256``, ``bytes``, ``source`` (URL it came from,
    ``""`` when unknown), ``status`` (``"downloaded"`` now or already ``"present"``)."""

    pdb: str
    path: Path
    sha256: str
    bytes: int
    source: str
    status: str


@dataclass(frozen=True)
class FailedDownload:
    """``pdb``: the PDB ID; ``urls``: the URLs tried, in order; ``reason``: why each failed, one line."""

    pdb: str
    urls: tuple
    reason: str


@dataclass
class DownloadReport:
    """What :func:`download_structures` did: ``files`` usable now, ``failed`` not, both in input order."""

    files: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    @property
    def n_downloaded(self) -> int:
        return sum(f.status == "downloaded" for f in self.files)


def _download_reasons(exc: DownloadError) -> list[str]:
    """The per-URL ``"url: why"`` lines of a DownloadError (its first line names the destination)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return [line for line in lines[1:] if line] or [" ".join(lines)]


def _fetch_entry(pdb: str, dest: Path, urls: list[str], previous: dict, retries: int, timeout: float,
                 backoff: float) -> Union[StructureFile, FailedDownload]:
    """Make ``dest`` a checked mmCIF.gz of ``pdb``: keep a good file already there, else try ``urls`` in order."""
    if dest.exists():
        problem = mmcif_gz_problem(dest)
        if problem is None:
            sha = sha256_file(dest)
            old = previous.get(pdb, {})
            source = old.get("source", "") if old.get("sha256") == sha else ""
            return StructureFile(pdb, dest, sha, dest.stat().st_size, source, "present")
        log.warning("%s is present but unusable (%s): downloading it again", dest, problem)
    # Downloaded under a hidden name, checked, then renamed: only accepted files ever carry
    # the final name, so an interrupted run leaves nothing that a rerun would take for done.
    tmp = dest.with_name(f".{dest.name}.download")
    reasons = []
    for url in urls:
        try:
            download(url, tmp, retries=retries, timeout=timeout, progress=False, backoff=backoff)
        except DownloadError as exc:
            reasons += _download_reasons(exc)
            continue
        problem = mmcif_gz_problem(tmp)
        if problem is None:
            os.replace(tmp, dest)
            return StructureFile(pdb, dest, sha256_file(dest), dest.stat().st_size, url, "downloaded")
        tmp.unlink()
        log.warning("%s from %s rejected: %s", pdb, url, problem)
        reasons.append(f"{url}: {problem}")
    return FailedDownload(pdb, tuple(urls), "; ".join(reasons))


def _read_manifest(path: Optional[Path]) -> dict[str, dict]:
    """``{pdb: row}`` of an earlier manifest (to keep the source URLs of files already present)."""
    if path is None or not path.exists():
        return {}
    lines = path.read_text().splitlines()
    if not lines:
        return {}
    header = lines[0].split("\t")
    rows = (dict(zip(header, line.split("\t"))) for line in lines[1:])
    return {row["pdb_id"]: row for row in rows if "pdb_id" in row}


def download_structures(entries: Iterable, out_dir, url_template: str = RCSB_URL,
                        mirrors: Sequence[str] = DEFAULT_MIRRORS, retries: int = 3, timeout: float = 60.0,
                        jobs: int = 4, progress: bool = True, backoff: float = 1.0,
                        previous_manifest=None) -> DownloadReport:
    """One checked ``<out_dir>/<pdb>.cif.gz`` per distinct PDB entry of ``entries``.

    ``entries``: :class:`ProteinNetId` or PDB ID strings. A file already present and passing
    :func:`mmcif_gz_problem` is kept (so an interrupted run resumes); otherwise the URLs of
    :func:`structure_urls` are tried in order, each with :func:`holovae.download.download`'s
    ``retries`` (transient errors, ``backoff`` doubling) and its atomic placement; an answer
    that is not a complete mmCIF gzip moves on to the next URL. Failures are collected, never
    raised. ``jobs`` threads download at once (the work waits on the network).
    ``previous_manifest``: an earlier :func:`write_manifest` output, whose source URLs are kept
    for files found present with the same sha256. Returns a :class:`DownloadReport`.
    """
    pdbs = unique_pdb_ids(entries)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(Path(previous_manifest) if previous_manifest else None)
    urls = {pdb: structure_urls(pdb, url_template, mirrors) for pdb in pdbs}  # bad templates fail first
    results = {}
    n_failed = 0
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(_fetch_entry, pdb, out_dir / f"{pdb}.cif.gz", urls[pdb], previous,
                               retries, timeout, backoff): pdb for pdb in pdbs}
        with tqdm(total=len(pdbs), unit="entry", desc="structures", disable=not progress) as bar:
            for future in as_completed(futures):
                pdb = futures[future]
                try:
                    results[pdb] = future.result()
                except OSError as exc:  # e.g. the disk is full: this entry fails, the others go on
                    results[pdb] = FailedDownload(pdb, tuple(urls[pdb]), f"{type(exc).__name__}: {exc}")
                n_failed += isinstance(results[pdb], FailedDownload)
                bar.update()
                bar.set_postfix(failed=n_failed, refresh=False)
    finally:
        # on Ctrl-C, drop the queued entries instead of downloading all of them before exiting
        pool.shutdown(wait=True, cancel_futures=True)
    report = DownloadReport()
    for pdb in pdbs:
        (report.files if isinstance(results[pdb], StructureFile) else report.failed).append(results[pdb])
    return report


def write_manifest(path, report: DownloadReport) -> Path:
    """TSV of the usable files: ``pdb_id, file, sha256, bytes, source, status`` (atomic write)."""
    path = Path(path)
    rows = ((f.pdb, f.path, f.sha256, f.bytes, f.source, f.status) for f in report.files)
    write_tsv_atomic(path, ("pdb_id", "file", "sha256", "bytes", "source", "status"), rows)
    return path


def write_failed(path, report: DownloadReport, unresolved: Sequence[UnresolvedId] = ()) -> Path:
    """TSV of what is missing: ``id, urls, reason`` -- failed downloads (id: the PDB ID, urls:
    space-separated) then list IDs naming no PDB entry (no urls). Written even when empty, so a
    stale list from an earlier run never stays behind."""
    path = Path(path)
    rows = [(f.pdb, " ".join(f.urls), f.reason) for f in report.failed]
    rows += [(u.id, "", u.reason) for u in unresolved]
    write_tsv_atomic(path, ("id", "urls", "reason"), rows)
    return path


def write_split_file_lists(out_dir, splits: dict, report: DownloadReport) -> dict[str, Path]:
    """``<split>_files.txt``: the files of each split's PDB entries that are usable now, one path
    a line (the input of ``holovae prepare-structures --from-list``). Returns ``{split: path}``."""
    out_dir = Path(out_dir)
    path_of = {f.pdb: f.path for f in report.files}
    paths = {}
    for name, entries in splits.items():
        pdbs = unique_pdb_ids(entries)
        files = [path_of[p] for p in pdbs if p in path_of]
        if len(files) < len(pdbs):
            log.warning("split %s: %d of %d PDB entries have no file", name, len(pdbs) - len(files), len(pdbs))
        paths[name] = out_dir / f"{name}_files.txt"
        write_text_atomic(paths[name], "".join(f"{p}\n" for p in files))
    return paths
