"""The workflow with `proteins.pretrained`: the LBA stage runs from a published-layout archive
served over loopback HTTP (downloaded, sha256 pinned, converted), with no protein training."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

import pretrained_fixtures as pf
from holovae.data.hdf5 import read_dataset
from loopback import serve
from test_workflow import REPO, SNAKEMAKE, job_counts, snakemake, write_config

pytestmark = pytest.mark.skipif(not Path(SNAKEMAKE).exists(), reason="snakemake is not installed")


@pytest.mark.slow
def test_lba_tables_from_a_downloaded_pretrained_model(tmp_path):
    fx = pf.load("tiny")
    www = tmp_path / "www"
    www.mkdir()
    archive = pf.published_tarball(www / "tiny.tar.gz", "tiny-test-model", fx["hparams"], pf.state_dict(fx["weights"]))
    work = tmp_path / "work"
    work.mkdir()
    # 24 of the embedded complexes: the sequence split of all 70 alone takes ~40 s
    from holovae.data.embedded import embedded_lba_directory
    ids = sorted(p.name for p in embedded_lba_directory().iterdir() if p.is_dir())[:24]
    (work / "ids.txt").write_text("\n".join(ids) + "\n")
    with serve(www) as url:
        cfg = write_config(work / "c.yaml", **{
            "proteins.pretrained": {"id": "tiny-test-model", "urls": [f"{url}/tiny.tar.gz"]},
            "lba.protein_variant": "pretrained", "lba.seeds": [0], "lba.other_channel_baseline": False,
            "lba.regressors": ["linear", "mean"], "lba.tables": ["table2_lba"], "lba.ids": str(work / "ids.txt")})
        dry = snakemake(work, "-n", "results/tables/table2_lba.csv", "--cores", "2", "--configfile", str(cfg)).stdout
        counts = job_counts(dry)
        assert counts["import_pretrained"] == 1 and "train" not in counts   # downloads itself (pinned)
        assert "train_proteins" not in counts and "prepare_structures_shard" not in counts
        snakemake(work, "results/tables/table2_lba.csv", "--cores", "2", "--configfile", str(cfg))
    results = work / "results"
    lock = json.loads((results / "checksums.lock").read_text())
    assert lock["download/pretrained/tiny-test-model.tar.gz"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert [p.name for p in (results / "proteins/models").iterdir()] == ["pretrained"]
    attrs = read_dataset(results / "lba/data/pockets.h5").attrs      # the pockets got the model's transform
    assert (attrs["radial"], attrs["normalization"], attrs["lmax"], attrs["n_max"]) == ("authors", "square", 6, 20)
    hae = json.loads((results / "lba/eval/hae.json").read_text())
    assert hae["model"] == "results/proteins/models/pretrained/best.pt" and hae["feature_dim"] == 8   # z of the tiny model
    with open(results / "tables/table2_lba.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["regressor"] for r in rows} == {"linear", "mean of training affinities"}
    assert all(float(r["rmsd"]) > 0 for r in rows)


def test_paper_config_embeds_the_lba_pockets_with_the_published_model(tmp_path):
    out = snakemake(tmp_path, "-n", "results/paper/tables/table2_lba.csv", "--cores", "2",
                    "--configfile", str(REPO / "config/paper.yaml")).stdout
    counts = job_counts(out)
    assert counts["import_pretrained"] == 1 and "train" not in counts   # downloads itself (pinned)
    assert "proteinnet_structures" not in counts and counts["download"] == 1   # ATOM3D's archive only
    # the published id: import-checkpoint knows its mirrors and pins the archive in the lock
    assert "import-checkpoint HAE-z=128-lmax=6-rst_norm=square" in out and "--lock results/paper/checksums.lock" in out


@pytest.mark.parametrize("change, expected", [
    ({"proteins.variants": {"pretrained": {"architecture": "L3_z64", "lmax": 3}}}, "pretrained"),
    ({"proteins.pretrained": {"id": "x", "url": "http://127.0.0.1/x"}}, "url"),
])
def test_schema_rejects_bad_pretrained_settings(tmp_path, change, expected):
    cfg = write_config(tmp_path / "bad.yaml", **change)
    proc = snakemake(tmp_path, "-n", "all", "--cores", "1", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0 and expected in proc.stdout + proc.stderr


def test_pretrained_variant_needs_the_setting(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", **{"lba.protein_variant": "pretrained"})
    proc = snakemake(tmp_path, "-n", "results/tables/table2_lba.csv", "--cores", "1", "--configfile", str(cfg),
                     check=False)
    assert proc.returncode != 0 and "proteins.pretrained set" in proc.stdout + proc.stderr


def test_protein_splits_are_embedded_by_the_pretrained_model(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", **{
        "proteins.pretrained": {"id": "m", "urls": ["http://127.0.0.1:9/m.tar.gz"], "lmax": 6},
        "proteins.figures": {"umap_variant": "pretrained"}})
    out = snakemake(tmp_path, "-n", "results/figures/fig4B_umap_pretrained.png", "--cores", "1",
                    "--configfile", str(cfg)).stdout
    counts = job_counts(out)
    assert counts["import_pretrained"] == 1 and counts["embed"] == 1 and "train" not in counts
    assert "results/proteins/data/L6/test.h5" in out         # the splits at the model's degree
