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


# ------------------------------------------------------------------------------------------------
# the central Cα (aminoacids.transform.drop_ca)
# ------------------------------------------------------------------------------------------------
def _origin_l0_terms(n_max: int, radial: str, normalization: str) -> np.ndarray:
    """l = 0 coefficients ``[n_max // 2 + 1]`` (n = 0, 2, ...) of one point at the origin, from the
    closed forms, not from holovae: ``R_n0(0) Y_00`` with ``Y_00 = 1 / sqrt(4 pi)`` (e3nn's
    'integral' normalisation) and

    * orthonormal: ``R_n0(x) = sqrt(2n + 3) P_k^(0, 1/2)(2x^2 - 1)``, k = n / 2 (Jacobi, scipy);
    * authors (docs/fidelity.md#transform): ``R_n0(x) = (-1)^k sqrt(2n + 3) binom(floor((n + 3) / 2) - 1, k)
      2F1(-k, (n + 3) / 2; 3 / 2; x^2)``.

    Under square normalisation the point's basis vector (only its l = 0 entries are non-zero at
    the origin, ``x^l = 0`` for l > 0) is divided by its squared norm."""
    from scipy.special import binom, eval_jacobi, hyp2f1

    n = np.arange(0, n_max + 1, 2)
    k = n // 2
    if radial == "orthonormal":
        r0 = np.sqrt(2 * n + 3) * eval_jacobi(k, 0.0, 0.5, -1.0)
    else:
        r0 = (-1.0) ** k * np.sqrt(2 * n + 3) * binom((n + 3) // 2 - 1, k) * hyp2f1(-k, (n + 3) / 2, 1.5, 0.0)
    basis = r0 / np.sqrt(4 * np.pi)
    return basis / (basis ** 2).sum() if normalization == "square" else basis


@pytest.mark.parametrize("radial, normalization", [("authors", "square"), ("orthonormal", "none")])
def test_the_central_ca_adds_exactly_the_l0_term_at_the_origin(tmp_path, radial, normalization):
    """Kept (--no-drop-ca), the Cα changes every residue's coefficients by the same vector: the
    origin's l = 0 radial terms in the carbon channel (the first n_radial(0) = 11 entries of the
    0e block at n_max = 20), nothing else; the choice is stored in the data's attributes."""
    files = [str(embedded_structure_paths()[2])]
    common = ["prepare-structures", *files, "--clouds", "residue", "--lmax", "4", "--n-max", "20",
              "--radial", radial, "--normalization", normalization, "--secondary", "none", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "dropped.h5")]) == 0
    assert main(common + ["--no-drop-ca", "--out", str(tmp_path / "kept.h5")]) == 0
    dropped, kept = read_dataset(tmp_path / "dropped.h5"), read_dataset(tmp_path / "kept.h5")
    assert dropped.attrs["central_ca_dropped"] is True and kept.attrs["central_ca_dropped"] is False
    assert kept.ids.tolist() == dropped.ids.tolist() and len(kept) > 100
    expected = np.zeros(dropped.irreps.dim)
    expected[:11] = _origin_l0_terms(20, radial, normalization)
    diff = kept.coefficients.double().numpy() - dropped.coefficients.double().numpy()
    scale = np.abs(kept.coefficients.numpy()).max()
    np.testing.assert_allclose(diff, np.broadcast_to(expected, diff.shape), rtol=0, atol=2e-6 * scale)
    assert np.abs(expected[:11]).min() > 100 * 2e-6 * scale      # every term is far above the tolerance


def test_embed_structures_keeps_the_central_ca_as_its_training_data_did(tmp_path):
    """A model trained on residue clouds with the Cα kept: embed-structures transforms new files
    the same way (from the model's stored attributes), so its z equal the model's z of the
    prepared data, and differ from those of clouds without the Cα."""
    import torch

    from holovae.embed import embed
    from holovae.models.checkpoint import load_model

    files = [str(p) for p in embedded_structure_paths()[:2]]
    common = ["--clouds", "residue", "--lmax", "2", "--n-max", "4", "--secondary", "none", "--no-progress"]
    assert main(["prepare-structures", *files, *common, "--no-drop-ca", "--out", str(tmp_path / "kept.h5")]) == 0
    assert main(["prepare-structures", files[1], *common, "--out", str(tmp_path / "dropped.h5")]) == 0
    assert main(["train", "--train", str(tmp_path / "kept.h5"), "--val", str(tmp_path / "kept.h5"), "--out",
                 str(tmp_path / "m"), "--set", "model.latent_dim=2", "--set", "model.channels=[4,4]",
                 "--set", "model.degrees=[2,1]", "--set", "model.initial_channels=4", "--set", "train.epochs=1",
                 "--set", "train.batch_size=64", "--set", "train.device=cpu", "--no-progress"]) == 0
    model_path = tmp_path / "m" / "best.pt"
    assert main(["embed-structures", files[1], "--model", str(model_path), "--out", str(tmp_path / "z.h5"),
                 "--secondary", "none", "--no-progress"]) == 0
    got = read_dataset(tmp_path / "z.h5")
    assert got.attrs["central_ca_dropped"] is False
    model = load_model(model_path, "cpu")
    kept, dropped = read_dataset(tmp_path / "kept.h5"), read_dataset(tmp_path / "dropped.h5")
    rows = np.flatnonzero([i.startswith(got.ids[0].split("|")[0] + "|") for i in kept.ids])
    assert kept.ids[rows].tolist() == got.ids.tolist() == dropped.ids.tolist()
    with torch.no_grad():
        z_kept = embed(model, kept.coefficients[rows], reconstructions=False)["z"]
        z_dropped = embed(model, dropped.coefficients, reconstructions=False)["z"]
    torch.testing.assert_close(got.coefficients, z_kept, rtol=1e-5, atol=1e-5)
    assert (got.coefficients - z_dropped).abs().max() > 1e-3
