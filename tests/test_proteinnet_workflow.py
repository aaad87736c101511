"""The ProteinNet route of the workflow against a loopback HTTP server: the archive of split
lists and the mmCIF files it names are downloaded (checkpoint), then the protein data are
prepared from the downloaded split; one entry is missing on the server and is reported."""
from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from loopback import serve
from test_workflow import SNAKEMAKE, snakemake, write_config

SHARED_PDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdb" / "posebusters_raw_mmcif"
pytestmark = [
    pytest.mark.skipif(not Path(SNAKEMAKE).exists(), reason="snakemake is not installed"),
    pytest.mark.skipif(not SHARED_PDB.is_dir(), reason=f"real structures not available at {SHARED_PDB}"),
]


def _records(ids):
    return "".join(f"[ID]\n{i}\n[PRIMARY]\nMK\n\n" for i in ids)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    (root / "pdb").mkdir(parents=True)
    files = sorted(SHARED_PDB.glob("*.cif.gz"), key=lambda p: p.stat().st_size)[:5]
    pdbs = [p.name[:4] for p in files]
    for p in files:
        shutil.copy(p, root / "pdb" / p.name)
    training = [f"{pdb.upper()}_1_A" for pdb in pdbs[:4]] + ["9ZZZ_1_A"]     # 9zzz: not on the server
    validation = [f"70#{pdbs[4].upper()}_1_A", "TBM#T0865"]                  # a CASP target: no PDB entry
    with tarfile.open(root / "casp12.tar.gz", "w:gz") as tar:
        for name, text in (("casp12/training_30", _records(training)), ("casp12/validation", _records(validation))):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with serve(root) as url:
        yield url, pdbs


def test_proteinnet_download_checkpoint_feeds_the_protein_rules(tmp_path, server):
    url, pdbs = server
    work = tmp_path / "work"
    work.mkdir()
    cfg = write_config(work / "pn.yaml", **{
        "results": "results", "threads": 1, "aminoacids": None, "lba": None,
        "proteinnet": {"archive_urls": [f"{url}/casp12.tar.gz"], "training_member": "training_30",
                       "validation_member": "validation", "validation_fraction": 0.25, "seed": 0,
                       "url_template": url + "/pdb/{pdb}.cif.gz", "mirrors": [], "max_failures_fraction": 0.5},
        "proteins.source": "proteinnet", "proteins.shard_size": 2,
        "proteins.transform": {"n_max": 4, "r_max": 10.0, "elements": ["C", "N", "O", "S"],
                               "normalization": "square", "radial": "authors", "secondary": "none"},
        "proteins.variants": {"hae_L2": {"architecture": "L3_z64", "lmax": 2}},
        "proteins.figures": {"umap_variant": "hae_L2"},
    })
    targets = [f"results/proteins/data/L2/{p}.h5" for p in ("train", "val", "test")]
    snakemake(work, *targets, "--cores", "2", "--configfile", str(cfg))
    down = work / "results/download/proteinnet"
    failed = (down / "structures/failed.tsv").read_text()
    assert ("9ZZZ" in failed or "9zzz" in failed) and "T0865" in failed
    manifest = (down / "structures/manifest.tsv").read_text().splitlines()
    assert len(manifest) == 1 + 5                                   # header + the five files served
    # the paper's use of ProteinNet: validation set = test set; training set split by PDB entry
    test_files = (down / "lists/test_files.txt").read_text()
    assert pdbs[4] in test_files and not any(p in test_files for p in pdbs[:4])
    from holovae.data.hdf5 import read_dataset

    ids = {p: {i.split("|")[0] for i in read_dataset(work / t).ids.tolist()} for p, t in zip(("train", "val", "test"), targets)}
    assert ids["test"] == {pdbs[4]} and ids["train"] | ids["val"] == set(pdbs[:4])
    assert not ids["train"] & ids["val"]                            # whole structures per split
    assert (work / "results/logs/download/proteinnet/structures.log").exists()
    # a finished download is not repeated
    assert "Nothing to be done" in snakemake(work, "-n", *targets, "--cores", "2", "--configfile", str(cfg)).stdout
