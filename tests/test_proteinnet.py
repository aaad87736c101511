"""holovae.data.proteinnet: ProteinNet ID lists, the paper's split, and structure downloads from a local server."""
import gzip
import hashlib
import http.server
import io
import logging
import os
import random
import shutil
import tarfile
import threading
from functools import partial
from pathlib import Path

import pytest

from holovae.cli import main
from holovae.data.proteinnet import (DownloadReport, ProteinNetId, download_structures, mmcif_gz_problem,
                                     parse_proteinnet_id, proteinnet_splits, read_proteinnet_ids,
                                     split_by_pdb_entry, structure_urls, unique_pdb_ids, write_failed,
                                     write_manifest, write_split_lists)
from holovae.data.structures import parse_structure

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdb" / "posebusters_raw_mmcif"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"real mmCIF files not available at {SHARED}")
REAL = ("6yqw", "7oeo", "7ush")  # small (~45 kB) wwPDB mmCIF.gz files
FAST = dict(retries=2, timeout=5, progress=False, backoff=0, jobs=2)


def records(ids) -> str:
    """ProteinNet text records (abridged fields) for ``ids``."""
    return "".join(f"[ID]\n{i}\n[PRIMARY]\nMKVLA\n[EVOLUTIONARY]\n0.1\t0.2\n0.3\t0.4\n[TERTIARY]\n"
                   f"1.0\t2.0\n3.0\t4.0\n5.0\t6.0\n[MASK]\n++-++\n\n" for i in ids)


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_tsv(path) -> list[dict]:
    header, *lines = Path(path).read_text().splitlines()
    return [dict(zip(header.split("\t"), line.split("\t"))) for line in lines]


# --------------------------------------------------------------------------------- ID parsing
@pytest.mark.parametrize("text, pdb, model, chain, domain, group", [
    ("1A0A_1_A", "1a0a", 1, "A", None, None),
    ("70#1A0A_2_B", "1a0a", 2, "B", None, "70"),
    ("4V6X_1_Ah", "4v6x", 1, "Ah", None, None),          # multi-character, mixed-case chain
    ("1JQG_d1jqga2", "1jqg", None, None, "d1jqga2", None),  # ASTRAL domain
    ("30#1A0A_d1a0aa-", "1a0a", None, None, "d1a0aa_", "30"),  # '-' stands for '_'
    ("1abc", "1abc", None, None, None, None),
    ("1abc_C", "1abc", None, "C", None, None),
])
def test_parse_id_formats(text, pdb, model, chain, domain, group):
    assert parse_proteinnet_id(text) == ProteinNetId(text, pdb, model, chain, domain, group)


@pytest.mark.parametrize("text, reason", [
    ("TBM#T0865", "CASP target T0865"),
    ("FM#T0859-D1", "CASP target T0859-D1"),
    ("TBM-hard#T0912", "CASP target"),
    ("0ABC_1_A", "unrecognised"),  # PDB IDs start with 1-9
    ("hello", "unrecognised"),
])
def test_parse_id_unresolved(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_proteinnet_id(text)


@pytest.mark.parametrize("gz", [False, True])
def test_read_record_file(tmp_path, gz):
    ids = ["1A0A_1_A", "70#2B3C_1_B", "1JQG_d1jqga2", "TBM#T0865", "1A0A_1_C"]
    text = records(ids)
    path = tmp_path / ("validation.gz" if gz else "validation")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    entries, unresolved = read_proteinnet_ids(path)
    assert [e.id for e in entries] == ["1A0A_1_A", "70#2B3C_1_B", "1JQG_d1jqga2", "1A0A_1_C"]
    assert [(u.id, "CASP target" in u.reason) for u in unresolved] == [("TBM#T0865", True)]
    assert unique_pdb_ids(entries) == ["1a0a", "2b3c", "1jqg"]


def test_read_plain_list(tmp_path):
    path = tmp_path / "ids.txt.gz"
    path.write_bytes(gzip.compress(b"# a comment line\n\n1A0A_1_A\n  90#2B3C_1_B   trailing column\n"
                                   b"# 9ZZZ_1_A commented out\n3def\nnot-an-id\nT0900\n"))
    entries, unresolved = read_proteinnet_ids(path)
    assert [(e.pdb, e.group) for e in entries] == [("1a0a", None), ("2b3c", "90"), ("3def", None)]
    assert [u.id for u in unresolved] == ["not-an-id", "T0900"]
    assert all(u.reason for u in unresolved)
    with pytest.raises(FileNotFoundError):
        read_proteinnet_ids(tmp_path / "missing.txt")


# ------------------------------------------------------------------------------ tar archives
CASP12 = {  # synthetic ProteinNet casp12 records, in archive order (the decoy training_90 first)
    "casp12/training_90": ["5ABC_1_A", "6DEF_1_B"],
    "casp12/training_30": ["1A0A_1_A", "2B3C_1_B", "1JQG_d1jqga2", "1A0A_1_C"],
    "casp12/validation": ["70#3GHI_1_A", "TBM#T0865"],
}


def write_archive(path, members: dict, mode="w:gz", extracted=None) -> Path:
    """A tar archive at ``path`` with ``{member: IDs}`` as record files (plus a directory entry);
    with ``extracted``, the same files also written under that folder."""
    with tarfile.open(path, mode) as tar:
        info = tarfile.TarInfo("casp12")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, ids in members.items():
            data = records(ids).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if extracted is not None:
                (Path(extracted) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(extracted) / name).write_bytes(data)
    return Path(path)


@pytest.mark.parametrize("mode, name", [("w:gz", "casp12.tar.gz"), ("w", "casp12.tar")])
def test_read_from_archive(tmp_path, mode, name):
    archive = write_archive(tmp_path / name, CASP12, mode, extracted=tmp_path / "x")
    before = sorted(tmp_path.rglob("*"))
    for member, file in (("casp12/training_30", "casp12/training_30"), ("training_30", "casp12/training_30"),
                         ("validation", "casp12/validation"), ("./casp12/validation", "casp12/validation")):
        ids = read_proteinnet_ids(f"{archive}::{member}")
        assert ids == read_proteinnet_ids(tmp_path / "x" / file), member
    assert [e.id for e in read_proteinnet_ids(Path(f"{archive}::training_30")).entries] == CASP12[
        "casp12/training_30"]
    assert read_proteinnet_ids(f"{archive}::validation").unresolved[0].id == "TBM#T0865"
    assert sorted(tmp_path.rglob("*")) == before  # nothing extracted


def test_archive_member_errors(tmp_path):
    archive = write_archive(tmp_path / "casp.tar.gz", {**CASP12, "casp11/validation": ["1XYZ_1_A"]})
    with pytest.raises(ValueError, match=r"casp\.tar\.gz: 2 members end with '/validation': "
                                         r"casp12/validation, casp11/validation; name one in full"):
        read_proteinnet_ids(f"{archive}::validation")
    assert [e.id for e in read_proteinnet_ids(f"{archive}::casp11/validation").entries] == ["1XYZ_1_A"]
    with pytest.raises(ValueError, match=r"casp\.tar\.gz: no member 'testing' or ending with '/testing'; "
                                         r"its files: casp12/training_90, casp12/training_30"):
        read_proteinnet_ids(f"{archive}::testing")
    with pytest.raises(ValueError, match="no member 'casp12/training'"):  # no prefix matching
        read_proteinnet_ids(f"{archive}::casp12/training")
    text = records(["1A0A_1_A"]).encode()
    (tmp_path / "records").write_bytes(text)
    (tmp_path / "records.gz").write_bytes(gzip.compress(text))
    for not_tar in (tmp_path / "records", tmp_path / "records.gz"):
        with pytest.raises(ValueError, match=f"{not_tar}: not a readable tar archive"):
            read_proteinnet_ids(f"{not_tar}::validation")
    with pytest.raises(FileNotFoundError):
        read_proteinnet_ids(f"{tmp_path / 'missing.tar.gz'}::validation")
    with pytest.raises(ValueError, match="expected ARCHIVE::MEMBER"):
        read_proteinnet_ids(f"{archive}::")
    odd = tmp_path / "odd::name"  # a file that exists is read as a file
    odd.write_text("1abc\n")
    assert [e.pdb for e in read_proteinnet_ids(odd).entries] == ["1abc"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_archive_streamed(tmp_path):
    """The archive is read as a stream: it may come through a pipe, which cannot seek."""
    data = write_archive(tmp_path / "casp12.tar.gz", CASP12).read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed():
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except BrokenPipeError:  # the reader stopped at its member
            pass

    for member in ("validation", "casp12/training_90"):
        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        ids = read_proteinnet_ids(f"{fifo}::{member}")
        writer.join(5)
        assert [e.id for e in ids.entries] == [i for i in CASP12[f"casp12/{member.split('/')[-1]}"] if "#T" not in i]


# ------------------------------------------------------------------------------------- splits
def many_ids(n_pdb=200, seed=1):
    """ProteinNet-style IDs with 1-3 chains per PDB entry, in random order."""
    rng = random.Random(seed)
    ids = [ProteinNetId(f"{i + 1000}_1_{c}", str(i + 1000), 1, c)
           for i in range(n_pdb) for c in "ABC"[: rng.randint(1, 3)]]
    rng.shuffle(ids)
    return ids


def test_split_deterministic_and_whole_entries():
    ids = many_ids()
    train, val = split_by_pdb_entry(ids, validation_fraction=0.2, seed=7)
    assert len(train) + len(val) == len(ids)
    train_pdbs, val_pdbs = set(unique_pdb_ids(train)), set(unique_pdb_ids(val))
    assert not train_pdbs & val_pdbs  # no PDB entry on both sides
    assert len(val_pdbs) == 40
    assert [e for e in ids if e in val] == val  # input order kept
    # the same for the same set in another order, different for another seed
    assert split_by_pdb_entry(list(reversed(ids)), 0.2, seed=7)[1] == list(reversed(val))
    assert set(unique_pdb_ids(split_by_pdb_entry(ids, 0.2, seed=8)[1])) != val_pdbs
    assert split_by_pdb_entry(ids, 0.0)[1] == []
    with pytest.raises(ValueError, match="validation_fraction"):
        split_by_pdb_entry(ids, 1.0)


def test_split_lists_round_trip(tmp_path):
    training = many_ids(50)
    test = [parse_proteinnet_id("70#9XYZ_1_A"), parse_proteinnet_id(f"90#{training[0].pdb}_1_Z")]
    splits = proteinnet_splits(training, test, validation_fraction=0.2, seed=0)
    assert splits["test"] == test
    paths = write_split_lists(tmp_path, splits, comment="source: test\nseed 0")
    for name, entries in splits.items():
        assert paths[name].read_text().startswith("# source: test\n# seed 0\n")
        assert read_proteinnet_ids(paths[name]).entries == entries
    assert read_tsv(tmp_path / "unresolved.tsv") == []


# ------------------------------------------------------------------------------ URLs, checks
def test_structure_urls():
    assert structure_urls("1ABC", "https://x/{pdb}.cif.gz", ["https://m/{mid}/{PDB}.gz"]) == [
        "https://x/1abc.cif.gz", "https://m/ab/1ABC.gz"]
    with pytest.raises(ValueError, match="names no"):
        structure_urls("1abc", "https://x/file.cif.gz", [])
    with pytest.raises(ValueError, match="only"):
        structure_urls("1abc", "https://x/{pdb}/{chain}", [])


def test_mmcif_gz_problem(tmp_path):
    cases = {
        "good": gzip.compress(b"# written by a tool\ndata_1ABC\n#\n_entry.id 1ABC\n"),
        "html": b"<!DOCTYPE html><html><body>Not found</body></html>",
        "html_gz": gzip.compress(b"<html>error</html>"),
        "truncated": gzip.compress(b"data_1ABC\n" + bytes(range(256)) * 100)[:-30],
        "pdb_format": gzip.compress(b"HEADER    HYDROLASE\nATOM      1  N   ALA A   1\n"),
    }
    problems = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        problems[name] = mmcif_gz_problem(tmp_path / name)
    assert problems["good"] is None
    assert "not a gzip file (an HTML page?)" in problems["html"]
    assert "not mmCIF" in problems["html_gz"] and "not mmCIF" in problems["pdb_format"]
    assert "truncated" in problems["truncated"]


# --------------------------------------------------------------------------- local PDB server
class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory, counting requests; paths in ``flaky`` answer 500 that many times first."""

    hits: dict = {}
    flaky: dict = {}
    lock = threading.Lock()

    def do_GET(self):
        with Handler.lock:
            Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
            fail = Handler.flaky.get(self.path, 0) > 0
            if fail:
                Handler.flaky[self.path] -= 1
        if fail:
            self.send_error(500, "temporarily broken")
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def pdb_server(tmp_path):
    """(primary template, mirror template) of a local server with, by PDB ID:

    6yqw at the primary; 7oeo at the mirror only; 7ush at the primary after two 500s;
    8xyz an HTML page at the primary (and 404 at the mirror); 9zzz nowhere.
    """
    root = tmp_path / "served"
    (root / "download").mkdir(parents=True)
    (root / "mirror" / "oe").mkdir(parents=True)
    shutil.copy(SHARED / "6yqw.cif.gz", root / "download")
    shutil.copy(SHARED / "7ush.cif.gz", root / "download")
    shutil.copy(SHARED / "7oeo.cif.gz", root / "mirror" / "oe")
    (root / "download" / "8xyz.cif.gz").write_text("<html><body>Service unavailable</body></html>")
    Handler.hits, Handler.flaky = {}, {"/download/7ush.cif.gz": 2}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield f"{base}/download/{{pdb}}.cif.gz", f"{base}/mirror/{{mid}}/{{pdb}}.cif.gz"
    httpd.shutdown()
    httpd.server_close()


@needs_shared
def test_download_structures(pdb_server, tmp_path):
    primary, mirror = pdb_server
    out = tmp_path / "pdb"
    ids = [parse_proteinnet_id(i) for i in ("6YQW_1_A", "7OEO_1_A", "7USH_1_A", "6YQW_1_B", "8XYZ_1_A")] + ["9zzz"]
    report = download_structures(ids, out, url_template=primary, mirrors=[mirror], **FAST)

    assert [f.pdb for f in report.files] == ["6yqw", "7oeo", "7ush"]
    for f in report.files:
        assert f.path == out / f"{f.pdb}.cif.gz" and f.status == "downloaded"
        assert f.sha256 == sha256(SHARED / f"{f.pdb}.cif.gz") == sha256(f.path)
        assert parse_structure(f.path).n_atoms > 0
    assert report.files[1].source.endswith("/mirror/oe/7oeo.cif.gz")
    assert Handler.hits["/download/7ush.cif.gz"] == 3  # two 500s retried
    failed = {f.pdb: f for f in report.failed}
    assert list(failed) == ["8xyz", "9zzz"]
    assert "not a gzip file (an HTML page?)" in failed["8xyz"].reason and "404" in failed["8xyz"].reason
    assert failed["9zzz"].reason.count("404") == 2 and len(failed["9zzz"].urls) == 2
    assert sorted(p.name for p in out.iterdir()) == ["6yqw.cif.gz", "7oeo.cif.gz", "7ush.cif.gz"]  # no leftovers

    manifest = write_manifest(tmp_path / "manifest.tsv", report)
    rows = read_tsv(manifest)
    assert [(r["pdb_id"], r["sha256"], int(r["bytes"])) for r in rows] == [
        (f.pdb, sha256(SHARED / f"{f.pdb}.cif.gz"), (SHARED / f"{f.pdb}.cif.gz").stat().st_size)
        for f in report.files]
    failed_rows = read_tsv(write_failed(tmp_path / "failed.tsv", report))
    assert [r["id"] for r in failed_rows] == ["8xyz", "9zzz"] and all(r["reason"] for r in failed_rows)

    # rerun: nothing good is fetched again, sources survive through the manifest
    hits = dict(Handler.hits)
    again = download_structures(ids, out, url_template=primary, mirrors=[mirror], previous_manifest=manifest,
                                **FAST)
    assert [(f.pdb, f.status) for f in again.files] == [(p, "present") for p in ("6yqw", "7oeo", "7ush")]
    assert [f.source for f in again.files] == [f.source for f in report.files]
    assert all(Handler.hits[p] == hits[p] for p in hits if "8xyz" not in p and "9zzz" not in p)

    # a damaged file is replaced
    data = (out / "6yqw.cif.gz").read_bytes()
    (out / "6yqw.cif.gz").write_bytes(data[: len(data) // 2])
    third = download_structures(["6yqw"], out, url_template=primary, mirrors=[], **FAST)
    assert third.files[0].status == "downloaded" and sha256(out / "6yqw.cif.gz") == sha256(SHARED / "6yqw.cif.gz")


@needs_shared
def test_cli(pdb_server, tmp_path, caplog):
    primary, mirror = pdb_server
    (tmp_path / "training_30").write_text(records(["6YQW_1_A", "7OEO_1_A", "9ZZZ_1_A", "6YQW_1_B"]))
    (tmp_path / "validation").write_text(records(["70#7USH_1_A", "TBM#T0865"]))
    (tmp_path / "extra.txt").write_text("# more\n8xyz\n")
    out, split = tmp_path / "pdb", tmp_path / "split"
    common = ["download-structures", "--training", str(tmp_path / "training_30"),
              "--validation", str(tmp_path / "validation"), "--ids", str(tmp_path / "extra.txt"),
              "--split-out", str(split), "--validation-fraction", "0.34", "--seed", "3", "--out", str(out),
              "--url-template", primary, "--mirror", mirror, "--retries", "2", "--backoff", "0",
              "--timeout", "5", "--jobs", "2", "--no-progress"]
    assert main(common) == 0
    assert sorted(p.name for p in out.glob("*.cif.gz")) == ["6yqw.cif.gz", "7oeo.cif.gz", "7ush.cif.gz"]
    assert [r["pdb_id"] for r in read_tsv(out / "manifest.tsv")] == ["6yqw", "7oeo", "7ush"]
    failed = read_tsv(out / "failed.tsv")
    assert [r["id"] for r in failed] == ["8xyz", "9zzz", "TBM#T0865"]
    train, val = (read_proteinnet_ids(split / f"{s}.txt").entries for s in ("train", "val"))
    assert (len(unique_pdb_ids(train)), len(unique_pdb_ids(val)), len(train) + len(val)) == (2, 1, 4)
    for name, entries in (("train", train), ("val", val)):  # the split's files that exist, one per entry
        listed = (split / f"{name}_files.txt").read_text().splitlines()
        assert listed == [str(out / f"{p}.cif.gz") for p in unique_pdb_ids(entries) if p != "9zzz"]
    assert [e.id for e in read_proteinnet_ids(split / "test.txt").entries] == ["70#7USH_1_A"]
    assert (split / "test_files.txt").read_text() == f"{out / '7ush.cif.gz'}\n"
    assert [r["id"] for r in read_tsv(split / "unresolved.tsv")] == ["TBM#T0865"]

    # a rerun fetches nothing; too many failures -> exit 1 naming failed.tsv
    n_hits = sum(Handler.hits.values())
    with caplog.at_level(logging.ERROR, logger="holovae"):
        assert main(common + ["--max-failures-fraction", "0.25"]) == 1
    assert "2 of 5 PDB entries failed" in caplog.text and str(out / "failed.tsv") in caplog.text
    assert sum(Handler.hits.values()) - n_hits == 4  # only the failures again: 8xyz and 9zzz, primary + mirror
    assert main(["download-structures", "--ids", str(tmp_path / "extra.txt")]) == 1  # nothing to do

    # --max-entries: the first N PDB entries named (extra.txt comes first: 8xyz, then 6yqw)
    few = tmp_path / "few"
    assert main(common[: common.index("--out")] + ["--out", str(few)] + common[common.index("--out") + 2:]
                + ["--max-entries", "2"]) == 0
    assert [r["pdb_id"] for r in read_tsv(few / "manifest.tsv")] == ["6yqw"]
    assert [r["id"] for r in read_tsv(few / "failed.tsv")] == ["8xyz", "TBM#T0865"]


def test_cli_split_only(tmp_path):
    training = records([f"{1000 + i}_1_A" for i in range(10)])
    (tmp_path / "training_30.gz").write_bytes(gzip.compress(training.encode()))
    (tmp_path / "validation").write_text(records(["70#2000_1_A", "TBM#T0865"]))
    args = ["download-structures", "--training", str(tmp_path / "training_30.gz"), "--validation",
            str(tmp_path / "validation"), "--split-out", str(tmp_path / "split")]
    assert main(args) == 0
    lists = {s: read_proteinnet_ids(tmp_path / "split" / f"{s}.txt").entries for s in ("train", "val", "test")}
    assert [len(lists[s]) for s in ("train", "val", "test")] == [8, 2, 1]
    assert "seed 0" in (tmp_path / "split" / "val.txt").read_text().splitlines()[0]
    assert not list((tmp_path / "split").glob("*_files.txt"))  # nothing downloaded
    assert main(args[:1] + args[3:]) == 1  # --split-out needs --training


def test_cli_split_from_archive(tmp_path):
    archive = write_archive(tmp_path / "casp12.tar.gz", CASP12, extracted=tmp_path / "x")
    split = {}
    for how, training, validation in (
            ("archive", f"{archive}::casp12/training_30", f"{archive}::validation"),
            ("files", tmp_path / "x" / "casp12" / "training_30", tmp_path / "x" / "casp12" / "validation")):
        split[how] = tmp_path / f"split_{how}"
        assert main(["download-structures", "--training", str(training), "--validation", str(validation),
                     "--split-out", str(split[how]), "--validation-fraction", "0.34"]) == 0
    for name in ("train", "val", "test"):
        assert (read_proteinnet_ids(split["archive"] / f"{name}.txt")
                == read_proteinnet_ids(split["files"] / f"{name}.txt"))
    assert [e.id for e in read_proteinnet_ids(split["archive"] / "test.txt").entries] == ["70#3GHI_1_A"]
    assert f"{archive}::casp12/training_30" in (split["archive"] / "train.txt").read_text()
    assert main(["download-structures", "--training", f"{archive}::testing", "--split-out",
                 str(tmp_path / "none")]) == 1  # missing member: an error, not a traceback


def test_report_files_empty(tmp_path):
    """Both TSVs are written with their header even when nothing was downloaded or failed."""
    report = DownloadReport()
    assert read_tsv(write_manifest(tmp_path / "m.tsv", report)) == []
    assert (tmp_path / "m.tsv").read_text().startswith("pdb_id\tfile\tsha256\tbytes\tsource\tstatus")
    assert read_tsv(write_failed(tmp_path / "f.tsv", report)) == []
