"""The download route of the Shrec17 workflow against a loopback HTTP server: the three mesh zips,
the two label CSVs and the evaluator (its all.csv.gz carries the test labels) are downloaded
(one md5 in the config checked), the meshes ray-cast straight out of the zips in shards, and
Tables 1 (Shrec17) / S4 / S9 come out labelled with the real data's name."""
from __future__ import annotations

import gzip
import hashlib
import json
import zipfile

import pytest

from loopback import serve
from test_workflow import SNAKEMAKE, TINY, read_csv, snakemake, write_config

pytest.importorskip("trimesh")
pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(SNAKEMAKE).exists(), reason="snakemake is not installed")


@pytest.fixture
def shrec_server(tmp_path):
    from holovae.data.synthetic_meshes import write_synthetic_shrec17

    build = tmp_path / "build"
    paths = write_synthetic_shrec17(build, {"train": 2, "val": 1, "test": 1}, seed=3)
    www = tmp_path / "www"
    www.mkdir()
    for split in ("train", "val", "test"):
        with zipfile.ZipFile(www / f"{split}_perturbed.zip", "w") as z:
            for p in sorted((build / f"{split}_perturbed").glob("*.obj")):
                z.write(p, f"{split}_perturbed/{p.name}")
    for split in ("train", "val"):
        (www / f"{split}.csv").write_bytes(paths[split].read_bytes())
    header, *_ = paths["train"].read_text().splitlines()
    rows = [line for p in paths.values() for line in p.read_text().splitlines()[1:]]
    with zipfile.ZipFile(www / "evaluator.zip", "w") as z:
        z.writestr("evaluator/all.csv.gz", gzip.compress(("\n".join([header, *rows]) + "\n").encode()))
        z.writestr("evaluator/Evaluator.js", "// the challenge's evaluator")
    md5 = hashlib.md5((www / "train_perturbed.zip").read_bytes()).hexdigest()
    with serve(www) as url:
        yield url, md5


def test_shrec17_tables_from_downloaded_archives(tmp_path, shrec_server):
    url, md5 = shrec_server
    work = tmp_path / "work"
    work.mkdir()
    shrec_keys = {k: v for k, v in TINY.items() if k.startswith("shrec17.")}
    cfg = write_config(work / "shrec.yaml", **{**shrec_keys, **{
        "results": "results", "threads": 1, "evaluate.equivariance_samples": 10,
        "proteins": None, "aminoacids": None, "lba": None,
        "shrec17.source": "download",
        "shrec17.download": {"base_urls": [f"{url}/"], "files": {
            "train_perturbed.zip": {"md5": md5}, "val_perturbed.zip": {}, "test_perturbed.zip": {},
            "train.csv": {}, "val.csv": {}, "evaluator.zip": {"urls": [f"{url}/evaluator.zip"]}}},
        "shrec17.shards": {"train": 3, "val": 1, "test": 1},
    }})
    snakemake(work, *(f"results/tables/{t}.csv" for t in ("table1_shrec17", "tableS4", "tableS9_shrec17")),
              "--cores", "2", "--configfile", str(cfg))
    rows = read_csv(work / "results/tables/table1_shrec17.csv")
    assert [(r["variant"], r["data"], r["n_train"], r["n_test"]) for r in rows] == [
        ("hae_z8", "SHREC17 perturbed", "12", "6"), ("hvae_z8", "SHREC17 perturbed", "12", "6")]
    ev = json.loads((work / "results/shrec17/eval/hae_z8.json").read_text())
    assert ev["kmeans_clusters"] == 6 and 0 <= ev["micro_ndcg"] <= 1
    # no mesh was extracted: the shards read the downloaded zips
    assert sorted(p.name for p in (work / "results/download/shrec17").iterdir()) == sorted(
        ["train_perturbed.zip", "val_perturbed.zip", "test_perturbed.zip", "train.csv", "val.csv", "evaluator.zip"])
    assert not (work / "results/shrec17/synthetic").exists()
    # the files without a published checksum are pinned in the lock at their first download; the
    # one with an md5 in the config is verified against it instead
    lock = json.loads((work / "results/checksums.lock").read_text())
    assert "download/shrec17/val.csv" in lock and "download/shrec17/train_perturbed.zip" not in lock
    assert lock["download/shrec17/val.csv"]["sha256"] == hashlib.sha256(
        (work / "results/download/shrec17/val.csv").read_bytes()).hexdigest()
    assert "pinned its sha256" in (work / "results/logs/download/shrec17/val.csv.log").read_text()
