"""The ATOM3D route of the LBA workflow against a loopback HTTP server: the split tarball (three
LMDBs in ATOM3D's layout, checksum in the config) is downloaded and extracted, the pockets are
embedded by a (tiny) protein model trained in the same run, and Tables 2 / S10 come out on
ATOM3D's own fixed split."""
from __future__ import annotations

import csv
import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from loopback import serve
from test_workflow import SNAKEMAKE, TINY, snakemake, write_config

pytest.importorskip("lmdb")
from test_lba_atom3d import COMPLEXES, SPLITS, _item, _write_lmdb  # noqa: E402  (needs lmdb)

pytestmark = [pytest.mark.skipif(not Path(SNAKEMAKE).exists(), reason="snakemake is not installed"),
              pytest.mark.skipif(not COMPLEXES.is_dir(), reason=f"real complexes not available at {COMPLEXES}")]


@pytest.fixture
def atom3d_server(tmp_path):
    pytest.importorskip("rdkit")
    from holovae.data.lba import find_complexes, read_pdbbind_index

    labels = read_pdbbind_index(COMPLEXES / "manifest.csv")
    wanted = {p for pids in SPLITS.values() for p in pids}
    complexes = {c.pdb_id: c for c in find_complexes(COMPLEXES) if c.pdb_id in wanted}
    build = tmp_path / "build"
    for name, pids in SPLITS.items():
        _write_lmdb(build / "split-by-sequence-identity-30" / "data" / name,
                    [_item(complexes[p], labels[p], series=False) for p in pids])
    root = tmp_path / "www"
    root.mkdir()
    archive = root / "LBA-split-by-sequence-identity-30.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(build / "split-by-sequence-identity-30", arcname="split-by-sequence-identity-30")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with serve(root) as url:
        yield f"{url}/{archive.name}", md5


def test_atom3d_lba_tables_from_a_downloaded_split(tmp_path, atom3d_server):
    url, md5 = atom3d_server
    work = tmp_path / "work"
    work.mkdir()
    protein_keys = {k: v for k, v in TINY.items() if k.startswith("proteins.") or k in ("results", "threads")}
    cfg = write_config(work / "lba.yaml", **protein_keys, **{
        "aminoacids": None,
        "lba.source": "atom3d",
        "lba.atom3d": {"urls": [url], "archive_name": "LBA-split-by-sequence-identity-30.tar.gz", "md5": md5,
                       "dataset_dir": "split-by-sequence-identity-30"},
        "lba.protein_variant": "hae_L3_z8",
        "lba.seeds": [0, 1],
        "lba.other_channel_baseline": False,
    })
    snakemake(work, "results/tables/table2_lba.csv", "results/tables/tableS10_lba.csv", "--cores", "2",
              "--configfile", str(cfg))
    split = json.loads((work / "results/lba/split.json").read_text())
    assert split["source"] == "atom3d-lists" and split["kind"] == "fixed"
    assert {k: sorted(v) for k, v in split["folds"][0].items()} == {k: sorted(v) for k, v in SPLITS.items()}
    with open(work / "results/tables/table2_lba.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["regressor"] for r in rows] == ["random forest", "linear", "mean of training affinities"]
    assert all(r["seeds"] == "2" and float(r["rmsd"]) > 0 for r in rows)
    assert "ATOM3D's split lists" in (work / "results/tables/table2_lba.md").read_text()
    assert (work / "results/logs/download/lba/LBA-split-by-sequence-identity-30.tar.gz.log").exists()
