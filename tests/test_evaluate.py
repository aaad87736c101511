"""Evaluation: latent-space metrics, equivariance errors and the `holovae evaluate` command."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import v_measure_score

from holovae.evaluate import (equivariance_error, fit_linear_classifier, kmeans_purity_vmeasure,
                              knn_accuracy, latent_invariance_error, linear_classifier_accuracy, purity)
from holovae.models import HVAE, HVAEConfig

IRREPS = "1x0e+1x1e+1x2e+1x3e"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # every tensor here is tiny: intra-op threads only add synchronisation cost, which grows to
    # seconds per test when other processes share the cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n_per_class, n_classes=3, dim=5, spread=0.3, seed=0):
    """Gaussian blobs around well-separated centres: ``z [n, dim]``, ``y [n]``."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(n_classes, dim)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + spread * rng.standard_normal((len(y), dim)), y


def tiny_model(**kw):
    torch.manual_seed(0)
    return HVAE(HVAEConfig(irreps_in=IRREPS, latent_dim=4, channels=[4, 4], degrees=[2, 1], **kw)).eval()


def test_purity_matches_a_hand_computed_contingency_table():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    clusters = ["a", "a", "b", "b", "b", "c", "c", "c", "a"]
    # cluster a: labels {0, 0, 2} -> 2; b: {0, 1, 1} -> 2; c: {2, 2, 2} -> 3
    assert purity(labels, clusters) == pytest.approx(7 / 9)


def test_kmeans_purity_and_vmeasure():
    z, y = blobs(30)
    p, v = kmeans_purity_vmeasure(z, y, n_clusters=3)
    assert p == 1.0 and v == pytest.approx(1.0)
    # with more clusters than classes: purity stays 1, V-measure is sklearn's on the same clustering
    from sklearn.cluster import KMeans
    p, v = kmeans_purity_vmeasure(z, y, n_clusters=5, seed=1)
    clusters = KMeans(n_clusters=5, n_init=10, random_state=1).fit_predict(z)
    assert p == 1.0 and v == pytest.approx(v_measure_score(y, clusters)) and v < 1


def test_kmeans_needs_enough_samples():
    with pytest.raises(ValueError, match="at least 10"):
        kmeans_purity_vmeasure(np.zeros((5, 2)), np.zeros(5))


def test_knn_on_separable_blobs():
    (zt, yt), (ze, ye) = blobs(20, seed=0), blobs(10, seed=1)
    assert knn_accuracy(zt, yt, ze, ye) == 1.0
    assert knn_accuracy(zt, yt, ze, (ye + 1) % 3) == 0.0   # the score does depend on the labels


def test_linear_classifier_learns_and_the_lr_decays():
    (zt, yt), (zv, yv), (ze, ye) = (blobs(100, spread=0.8, seed=s) for s in range(3))
    res = fit_linear_classifier(zt, yt, zv, yv, ze, ye, lr=0.01, patience=5)
    assert res.test_accuracy >= 0.95
    assert res.lr_history[0] == pytest.approx(0.01)
    assert res.epochs_run == len(res.val_history)
    assert res.best_val_accuracy == max(res.val_history)
    # validation labels that carry no signal: no gain after the first epochs, so the LR is
    # divided once after `patience` flat epochs, then training stops
    noise = np.random.default_rng(5).permutation(yv)
    flat = fit_linear_classifier(zt, yt, zv, noise, ze, ye, lr=0.01, patience=5)
    assert flat.final_lr == pytest.approx(0.001) and flat.epochs_run < 250
    # without early stopping the LR keeps dropping tenfold on every plateau
    full = fit_linear_classifier(zt, yt, zv, noise, ze, ye, epochs=40, patience=5, early_stop=False)
    assert full.epochs_run == 40 and full.final_lr <= 1e-4 + 1e-12
    assert linear_classifier_accuracy(zt, yt, zv, yv, ze, ye, patience=5) == res.test_accuracy   # seeded


def test_linear_classifier_sees_z_unstandardised_unless_asked():
    """The authors classify z as it is: a feature scale the data does not explain (a large
    offset here) changes the unstandardised fit and not the standardised one, whose first
    layer sees the same standardised features either way."""
    (zt, yt), (zv, yv), (ze, ye) = (blobs(60, spread=1.5, seed=s) for s in range(3))
    shift = np.zeros(zt.shape[1])
    shift[0] = 300.0
    kw = dict(epochs=15, patience=5, early_stop=False)
    std_a = fit_linear_classifier(zt, yt, zv, yv, ze, ye, standardize=True, **kw)
    std_b = fit_linear_classifier(zt + shift, yt, zv + shift, yv, ze + shift, ye, standardize=True, **kw)
    np.testing.assert_allclose(std_a.test_logits, std_b.test_logits, rtol=1e-4, atol=1e-4)
    raw_a = fit_linear_classifier(zt, yt, zv, yv, ze, ye, **kw)
    raw_b = fit_linear_classifier(zt + shift, yt, zv + shift, yv, ze + shift, ye, **kw)
    assert np.abs(raw_a.test_logits - raw_b.test_logits).max() > 1.0


def test_linear_classifier_is_not_fooled_by_random_labels():
    (zt, yt), (zv, yv), (ze, ye) = (blobs(40, seed=s) for s in range(3))
    rng = np.random.default_rng(0)
    acc = linear_classifier_accuracy(zt, rng.permutation(yt), zv, yv, ze, ye, patience=3)
    assert acc < 0.8


@pytest.mark.parametrize("decoder", ["equivariant", "mlp"])
def test_hvae_is_equivariant_in_float32(decoder):
    model = tiny_model(decoder=decoder, mlp_hidden=[16])
    x = torch.randn(64, 16)
    res = equivariance_error(model, x, n_rotations=2, batch_size=50)
    assert res["relative_error_max"] < 1e-4, res
    assert res["equiv_error_mean"] < 1e-4 * res["abs_value_mean"]
    assert res["abs_value_mean"] > 0 and res["abs_value_std"] >= 0
    assert latent_invariance_error(model, x, n_rotations=2) < 1e-4


def test_a_non_equivariant_function_has_a_large_error():
    W = torch.randn(16, 16, generator=torch.Generator().manual_seed(1))
    x = torch.randn(32, 16)
    assert equivariance_error(lambda v: v @ W, x, irreps=IRREPS)["relative_error_mean"] > 0.1
    assert equivariance_error(lambda v: v, x, irreps=IRREPS)["relative_error_max"] < 1e-6
    with pytest.raises(ValueError, match="irreps"):
        equivariance_error(lambda v: v, x)


def test_evaluate_cli_end_to_end(tmp_path):
    from holovae.cli import main
    from holovae.data.hdf5 import write_dataset
    from holovae.models.checkpoint import save_model

    model = tiny_model(vae=True)
    save_model(model, tmp_path / "best.pt")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 40), ("val", 20), ("test", 30)):
        write_dataset(tmp_path / f"{split}_data.h5", torch.randn(n, 16, generator=g), IRREPS,
                      labels=np.arange(n) % 3, ids=[f"{split}{i}" for i in range(n)])
        assert main(["embed", "--model", str(tmp_path / "best.pt"), "--data", str(tmp_path / f"{split}_data.h5"),
                     "--out", str(tmp_path / "emb" / f"{split}.h5"), "--no-progress"]) == 0
    (tmp_path / "history.json").write_text(json.dumps([{"epoch": i + 1, "seconds": s} for i, s in enumerate([3.0, 1.0, 2.0])]))
    out = tmp_path / "res" / "eval.json"
    argv = ["evaluate", "--model", str(tmp_path / "best.pt"), "--embeddings", str(tmp_path / "emb"),
            "--test-data", str(tmp_path / "test_data.h5"), "--history", str(tmp_path / "history.json"),
            "--meta", "variant=hvae_z4", "--meta", "split=NR/R", "--meta", "seed=2",
            "--equivariance-samples", "10", "--clusters", "3", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads(out.read_text())
    assert r["variant"] == "hvae_z4" and r["split"] == "NR/R" and r["seed"] == 2
    assert (r["model"], r["z"], r["decoder"], r["tp"], r["lmax"]) == ("H-VAE", 4, "equivariant", "efficient", 3)
    assert r["channels"] == [4, 4] and r["degrees"] == [2, 1] and r["params"] == model.n_parameters()
    assert (r["n_train"], r["n_test"], r["epochs"], r["seconds_per_epoch"]) == (40, 30, 3, 2.0)
    assert r["mse"] > 0 and 0 <= r["cosine"] <= 2 and 0 <= r["cosine_weighted"] <= 2
    for key in ("purity", "v_measure", "lc_acc", "knn_acc"):
        assert 0 <= r[key] <= 1, key
    assert r["purity"] >= 1 / 3
    assert r["equiv_relative_error_max"] < 1e-4 and r["latent_invariance_error"] < 1e-4
    assert r["equiv_error_mean"] < r["abs_value_mean"] and r["equiv_error_std"] >= 0 and r["abs_value_std"] >= 0
    assert not list(out.parent.glob(".*.tmp"))
    # the authors' KNN protocol: scikit-learn's default KNeighborsClassifier on train + val latents
    from sklearn.neighbors import KNeighborsClassifier

    from holovae.data.hdf5 import read_dataset
    emb = {s: read_dataset(tmp_path / "emb" / f"{s}.h5") for s in ("train", "val", "test")}
    ref = KNeighborsClassifier().fit(np.concatenate([emb["train"].extra["z"], emb["val"].extra["z"]]),
                                     np.concatenate([emb["train"].labels, emb["val"].labels]))
    assert r["knn_fit"] == "train+val" and r["lc_standardize"] is False
    assert r["knn_acc"] == ref.score(emb["test"].extra["z"], emb["test"].labels)
    assert main(argv[:-2] + ["--knn-fit", "train", "--out", str(tmp_path / "t.json")]) == 0
    only_train = KNeighborsClassifier().fit(emb["train"].extra["z"], emb["train"].labels)
    assert json.loads((tmp_path / "t.json").read_text())["knn_acc"] == only_train.score(emb["test"].extra["z"], emb["test"].labels)

    # a meta key that collides with a metric, and embeddings without labels, are clear errors
    assert main(argv[:-2] + ["--meta", "mse=1", "--out", str(tmp_path / "x.json")]) == 1
    write_dataset(tmp_path / "emb" / "val.h5", torch.randn(20, 16), IRREPS, extra={"z": np.zeros((20, 4))})
    from holovae.evaluate.model import evaluate_model
    with pytest.raises(ValueError, match=r"val\.h5.*labels"):
        evaluate_model(tmp_path / "best.pt", tmp_path / "emb", tmp_path / "test_data.h5")


def test_cross_validated_accuracies_on_blobs():
    """Stratified 5-fold CV on one set: every fold learns (a fold with a frozen LR would score ~0)."""
    from holovae.evaluate import cross_validated_accuracies

    z, y = blobs(60, spread=0.5, seed=0)
    res = cross_validated_accuracies(z, y, folds=5, seed=0)
    assert len(res["lc_acc_folds"]) == len(res["knn_acc_folds"]) == 5
    assert min(res["lc_acc_folds"]) >= 0.9 and min(res["knn_acc_folds"]) >= 0.9
    assert res["lc_acc"] == pytest.approx(np.mean(res["lc_acc_folds"]))
    assert res["cv_samples"] == len(y)
    # labels independent of z: chance level, not better
    noise = np.random.default_rng(1).permutation(y)
    assert cross_validated_accuracies(z, noise, folds=5, seed=0)["knn_acc"] < 0.6
