"""All metrics of one trained model, the content of ``holovae evaluate``'s JSON: reconstruction
(MSE, cosine losses), latent space (K-means purity and V-measure, linear and KNN classifiers,
optionally SHREC'17 retrieval) and equivariance errors.

Inputs are the outputs of earlier stages: the model file (``holovae train``), the embeddings of
the train/val/test splits (``holovae embed``: coefficients = reconstructions, datasets z, frame,
labels), the original test coefficients and the training history.
"""
from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path

import numpy as np
import torch
from holovae._e3nn import o3

from ..data.hdf5 import read_dataset
from ..losses import cosine_loss, weighted_cosine_loss
from ..models.checkpoint import load_model
from .equivariance import equivariance_error, latent_invariance_error
from .latent import cross_validated_accuracies, fit_linear_classifier, kmeans_purity_vmeasure, knn_accuracy
from .retrieval import shrec17_metrics_from_predictions

log = logging.getLogger("holovae")

SPLITS = ("train", "val", "test")


def history_stats(path) -> dict:
    """``seconds_per_epoch`` (median of the records' training seconds) and ``epochs``."""
    try:
        history = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the training history ({exc})") from None
    if not isinstance(history, list) or not all(isinstance(r, dict) and "seconds" in r for r in history):
        raise ValueError(f"{path}: expected a JSON list of epoch records with 'seconds'")
    if not history:   # an untrained model (train.epochs = 0)
        return {"seconds_per_epoch": None, "epochs": 0}
    return {"seconds_per_epoch": float(statistics.median(r["seconds"] for r in history)), "epochs": len(history)}


def read_embeddings(directory: Path, irreps, splits=SPLITS) -> dict:
    """``{split: Dataset}`` of ``directory/{split}.h5`` (``holovae embed``'s files), each with
    ``labels`` and the latents ``z``; an error naming the file otherwise."""
    out = {}
    for split in splits:
        path = directory / f"{split}.h5"
        ds = read_dataset(path, expected_irreps=irreps)
        if ds.labels is None:
            raise ValueError(f"{path}: no 'labels' dataset; the latent-space classifiers need labels")
        if "z" not in ds.extra:
            raise ValueError(f"{path}: no 'z' dataset; is it a file written by `holovae embed`?")
        out[split] = ds
    return out


def evaluate_model(model_path, embeddings_dir, test_data, history=None, equivariance_samples: int = 1000,
                   n_clusters: int = 10, seed: int = 0, device: str = "cpu", cv_folds: int = 0,
                   retrieval: bool = False, knn_fit: str = "train+val", lc_standardize: bool = False) -> dict:
    """All metrics of one model (the keys of the output JSON, without the --meta pairs).

    ``cv_folds > 0``: the classifiers are fitted by stratified cross-validation on the test
    embeddings alone (the amino-acid protocol); only ``test.h5`` is read from ``embeddings_dir``
    and ``n_train`` is left to the caller's metadata.
    ``retrieval``: also the SHREC'17 retrieval metrics (:mod:`holovae.evaluate.retrieval`) of the
    linear classifier's test predictions (keys ``micro_precision`` ... ``macro_ndcg``); the test
    data's ``classes`` / ``subclasses`` attributes and ``sublabels`` grade the NDCG.
    ``knn_fit``: the KNN classifier's reference set, ``"train+val"`` (the authors' classifiers) or
    ``"train"``; ``lc_standardize``: standardise z for the linear classifier (the authors do not)."""
    model = load_model(model_path, device)
    cfg = model.config
    irreps = o3.Irreps(cfg.irreps_in)
    emb = read_embeddings(Path(embeddings_dir), irreps, ("test",) if cv_folds else SPLITS)
    test = read_dataset(test_data, expected_irreps=irreps)
    rec = emb["test"]
    if len(test) != len(rec):
        raise ValueError(f"{test_data} has {len(test)} samples but {rec.path} has {len(rec)}")
    if test.ids is not None and rec.ids is not None and not np.array_equal(test.ids, rec.ids):
        raise ValueError(f"{test_data} and {rec.path}: sample ids differ (embeddings of another file?)")

    res = {"model": "H-VAE" if cfg.vae else "H-AE", "z": cfg.latent_dim, "decoder": cfg.decoder, "tp": cfg.tp,
           "channels": list(cfg.channels), "degrees": list(cfg.degrees), "params": model.n_parameters(),
           "lmax": irreps.lmax, "data_dim": irreps.dim, "initial_channels": cfg.initial_channels, "n_test": len(rec)}
    if test.attrs.get("quadrature"):   # spherical images: which transform made the coefficients
        res["quadrature"] = test.attrs["quadrature"]
    if not cv_folds:
        res["n_train"] = len(emb["train"])
    res.update(history_stats(history) if history else {"seconds_per_epoch": None, "epochs": None})

    log.info("reconstruction metrics on %d test samples", len(rec))
    x, x_rec = test.coefficients.double(), rec.coefficients.double()
    res["mse"] = float(((x_rec - x) ** 2).mean())
    res["cosine"] = float(cosine_loss(x_rec, x).mean())
    res["cosine_weighted"] = float(weighted_cosine_loss(x_rec, x, irreps).mean())

    z = {s: e.extra["z"] for s, e in emb.items()}
    y = {s: e.labels for s, e in emb.items()}
    if n_clusters == 0:   # one centroid per class
        n_clusters = len(np.unique(y["test"]))
    log.info("K-means (%d clusters) on the test latents", n_clusters)
    res["kmeans_clusters"] = int(n_clusters)
    res["purity"], res["v_measure"] = kmeans_purity_vmeasure(z["test"], y["test"], n_clusters=n_clusters, seed=seed)
    if retrieval and cv_folds:
        raise ValueError("retrieval metrics need the train/val/test protocol, not --cv-folds")
    if cv_folds:
        log.info("linear classifier and KNN on z: %d-fold cross-validation on %d test samples", cv_folds, len(y["test"]))
        res.update(cross_validated_accuracies(z["test"], y["test"], folds=cv_folds, seed=seed,
                                              standardize=lc_standardize))
        res["classifier_protocol"] = f"{cv_folds}-fold CV on test"
    else:
        log.info("linear classifier and KNN on z (train %d, val %d, test %d)", len(y["train"]), len(y["val"]), len(y["test"]))
        lc = fit_linear_classifier(z["train"], y["train"], z["val"], y["val"], z["test"], y["test"],
                                   seed=seed, early_stop=False,   # the paper: all 250 epochs
                                   standardize=lc_standardize)
        res["lc_acc"] = lc.test_accuracy
        if retrieval:
            res.update(retrieval_metrics(lc, test, y["test"]))
        if knn_fit == "train+val":
            z_ref, y_ref = np.concatenate([z["train"], z["val"]]), np.concatenate([y["train"], y["val"]])
        elif knn_fit == "train":
            z_ref, y_ref = z["train"], y["train"]
        else:
            raise ValueError(f"knn_fit must be 'train+val' or 'train', got {knn_fit!r}")
        res["knn_acc"] = knn_accuracy(z_ref, y_ref, z["test"], y["test"])
        res["classifier_protocol"] = "train/val/test"
        res["knn_fit"] = knn_fit
    res["lc_standardize"] = lc_standardize

    n_eq = min(equivariance_samples, len(test))
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n_eq]
    log.info("equivariance error on %d test samples", n_eq)
    eq = equivariance_error(model, test.coefficients[idx], seed=seed)
    res.update({k: eq[k] for k in ("equiv_error_mean", "equiv_error_std", "abs_value_mean", "abs_value_std")})
    res["equiv_relative_error_max"] = eq["relative_error_max"]
    res["equiv_relative_error_mean"] = eq["relative_error_mean"]
    res["latent_invariance_error"] = latent_invariance_error(model, test.coefficients[idx], seed=seed)
    return res


def retrieval_metrics(lc, test, y_test) -> dict:
    """SHREC'17 metrics of the linear classifier's test predictions: retrieval lists built from
    its predicted classes and logits (as Spherical CNNs did), graded by class and sub-class."""
    pred_idx = lc.test_logits.argmax(1)
    predicted = lc.classes[pred_idx]
    scores = lc.test_logits[np.arange(len(pred_idx)), pred_idx]
    classes, subclasses = test.attrs.get("classes") or [], test.attrs.get("subclasses") or []
    sub = test.extra.get("sublabels")
    if classes and subclasses and sub is not None:
        # the grades compare sub-class and class ids (a model without a finer sub-class has its
        # class as sub-class), so compare the names, not the two index spaces
        labels = np.asarray(classes, dtype=object)[np.asarray(y_test)]
        sublabels = np.asarray(subclasses, dtype=object)[np.asarray(sub)]
        pred_names = np.asarray(classes, dtype=object)[np.asarray(predicted)]
        metrics = shrec17_metrics_from_predictions(labels, pred_names, scores, sublabels)
    else:
        metrics = shrec17_metrics_from_predictions(np.asarray(y_test), predicted, scores)
    return {k: float(v) for k, v in metrics.items()}
