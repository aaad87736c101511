"""Amino-acid conformations: residue-only clouds, balanced training subsets, the untrained
baseline (train.epochs = 0), the 5-fold protocol of `holovae evaluate --cv-folds`, Tables S5/S6."""
import json

import numpy as np
import pytest

from holovae.cli import main
from holovae.data.embedded import embedded_structure_paths
from holovae.data.hdf5 import read_dataset
from holovae.data.neighbourhoods import centre_residues
from holovae.data.structures import parse_structure
from holovae.data.subsets import balanced_indices, random_indices
from holovae.report.tables import build_table


def test_balanced_indices_are_balanced_seeded_and_filled_when_short():
    labels = np.repeat(np.arange(4), [50, 50, 50, 3])          # class 3 is rare
    idx = balanced_indices(labels, 40, seed=1)
    assert len(idx) == len(np.unique(idx)) == 40
    counts = np.bincount(labels[idx], minlength=4)
    assert counts[3] == 3 and counts[:3].sum() == 37            # the rare class gives all it has
    assert counts[:3].max() - counts[:3].min() <= 1             # the shortfall spread over the others
    assert np.array_equal(idx, balanced_indices(labels, 40, seed=1))
    assert not np.array_equal(idx, balanced_indices(labels, 40, seed=2))
    exact = balanced_indices(np.repeat(np.arange(4), 50), 40, seed=0)
    assert np.bincount(np.repeat(np.arange(4), 50)[exact]).tolist() == [10, 10, 10, 10]
    with pytest.raises(ValueError, match="pool of 153"):
        balanced_indices(labels, 200, seed=0)
    assert random_indices(10, 50, seed=0).tolist() == list(range(10))


@pytest.fixture(scope="module")
def residues(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aminoacids")
    files = [str(p) for p in embedded_structure_paths()[:2]]
    assert main(["prepare-structures", *files, "--clouds", "residue", "--out", str(tmp / "pool.h5"), "--lmax", "4",
                 "--secondary", "none", "--normalization", "square", "--radial", "authors", "--no-progress"]) == 0
    return tmp, files


def test_residue_clouds_data(residues):
    tmp, files = residues
    ds = read_dataset(tmp / "pool.h5")
    # L = 4, n_max = 20, C/N/O/S: the paper's 940 coefficients
    assert str(ds.irreps) == "44x0e+40x1e+40x2e+36x3e+36x4e" and ds.irreps.dim == 940
    assert ds.attrs["kind"] == "amino_acid_conformations"
    expected = sum(len(centre_residues(parse_structure(f))[0]) for f in files)
    assert len(ds) == expected                                    # one cloud per residue with a backbone
    # the label is the residue type named in the id
    names = ds.attrs["label_names"]
    assert all(i.split("|")[-1] == names[y] for i, y in zip(ds.ids.tolist(), ds.labels.tolist()))


def test_subset_untrained_and_cross_validated_evaluation(residues):
    tmp, _ = residues
    assert main(["subset", str(tmp / "pool.h5"), "--out", str(tmp / "train.h5"), "--n", "60", "--balanced",
                 "--seed", "3"]) == 0
    sub = read_dataset(tmp / "train.h5")
    assert len(sub) == 60 and sub.attrs["subset_seed"] == 3 and sub.attrs["kind"] == "amino_acid_conformations"
    assert np.bincount(sub.labels, minlength=20).max() <= 4       # 20 types: 3 each, short ones refilled
    assert main(["subset", str(tmp / "pool.h5"), "--out", str(tmp / "test.h5"), "--n", "150", "--seed", "0"]) == 0
    arch = ["--set", "model.latent_dim=2", "--set", "model.channels=[6,6]", "--set", "model.degrees=[2,1]",
            "--set", "model.initial_channels=6", "--set", "train.batch_size=20", "--set", "train.device=cpu"]
    for name, epochs in (("untrained", 0), ("trained", 2)):
        assert main(["train", "--train", str(tmp / "train.h5"), "--val", str(tmp / "test.h5"), "--out",
                     str(tmp / name), "--set", f"train.epochs={epochs}", *arch, "--no-progress"]) == 0
        (tmp / f"emb_{name}").mkdir()
        assert main(["embed", "--model", str(tmp / name / "best.pt"), "--data", str(tmp / "test.h5"),
                     "--out", str(tmp / f"emb_{name}" / "test.h5"), "--no-progress"]) == 0
        assert main(["evaluate", "--model", str(tmp / name / "best.pt"), "--embeddings", str(tmp / f"emb_{name}"),
                     "--test-data", str(tmp / "test.h5"), "--history", str(tmp / name / "history.json"),
                     "--cv-folds", "3", "--clusters", "5", "--equivariance-samples", "20",
                     "--meta", "dataset=Amino acids", "--meta", f"variant={name}", "--meta", f"n_train={60 * bool(epochs)}",
                     "--meta", "beta=0", "--meta", "repeat=0", "--out", str(tmp / f"{name}.json")]) == 0
    untrained = json.loads((tmp / "untrained.json").read_text())
    trained = json.loads((tmp / "trained.json").read_text())
    assert untrained["epochs"] == 0 and untrained["seconds_per_epoch"] is None and trained["epochs"] == 2
    for ev in (untrained, trained):
        assert ev["classifier_protocol"] == "3-fold CV on test" and len(ev["lc_acc_folds"]) == 3
        assert ev["lc_acc"] == pytest.approx(np.mean(ev["lc_acc_folds"]))
        assert ev["equiv_relative_error_max"] < 1e-4
    # training changed the model: the reconstruction got better than at initialisation
    assert trained["cosine"] < untrained["cosine"]
    rows = build_table("tableS5", [untrained, trained]).rows
    assert [(r["model"], r["n_train"]) for r in rows] == [("H-AE", 0), ("H-AE", 60)]
    assert rows[0]["knn_acc_paper"] == pytest.approx(0.629)        # the paper's n_train = 0 row
    assert rows[0]["knn_acc"] == pytest.approx(untrained["knn_acc"]) and rows[0]["repeats"] == 1


def test_tables_s5_s6_average_repeats():
    base = {"dataset": "Amino acids", "model": "H-VAE", "beta": 0.025, "n_train": 400, "z": 2, "lmax": 4,
            "cosine": 0.2, "n_test": 100}
    evals = [dict(base, variant=f"hvae_b0.025_n400_r{r}", repeat=r, cosine_weighted=c, lc_acc=a, knn_acc=k)
             for r, (c, a, k) in enumerate([(0.1, 0.5, 0.8), (0.2, 0.7, 0.9), (0.3, 0.6, 0.7)])]
    row = build_table("tableS5", evals).rows[0]
    assert row["repeats"] == 3
    assert row["cosine"] == pytest.approx(0.2) and row["cosine_std"] == pytest.approx(0.1)
    assert row["lc_acc"] == pytest.approx(0.6) and row["knn_acc_std"] == pytest.approx(0.1)
    assert row["cosine_paper"] == pytest.approx(0.160) and row["knn_acc_paper"] == pytest.approx(0.848)
    s6 = build_table("tableS6", [dict(e, n_train=20000) for e in evals]).rows[0]
    assert s6["beta"] == pytest.approx(0.025) and s6["cosine_paper"] == pytest.approx(0.037)
