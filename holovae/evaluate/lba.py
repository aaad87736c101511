"""Binding affinity regressed from per-complex features of the pocket residues (the paper's LBA
experiment, ``holovae lba-regress``), over the folds of a ``holovae lba-split`` JSON.

Features of a complex (summed over its pocket residues, so that every complex gives one vector
whatever the size of its pocket):

* ``hae``: the invariant latent z (the encoder's mean, :func:`holovae.embed.embed`) of each
  pocket residue's neighbourhood; the data must have been transformed as the model's training
  data (:func:`holovae.data.lba.transform_mismatches`);
* ``zernike_inv``: the l = 0 Zernike coefficients of each neighbourhood (every channel and radial
  order), the rotation-invariant part of the data without a model.

Every regressor (:func:`holovae.evaluate.regression.fit_methods` of ``protocol``: the paper's
text, or the authors' released code) is fitted per seed on each fold's train set, choosing on
its validation set, and predicts its test set. For a CV split the
test predictions of all folds are pooled per seed and scored together
(:func:`~holovae.evaluate.regression.regression_metrics`), since a fold of a small set is too
small to score alone; metrics are then mean ± std over the seeds (std with ddof=1).
"""
from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..data.lba import FoldRows, align_split, data_pocket, read_lba_dataset, read_split

__all__ = ["FEATURES", "REGRESSORS", "SMALL_GRID", "PREDICTION_COLUMNS", "regress_lba", "read_data",
           "complex_features", "invariant_columns", "pocket_sums", "latent_rows", "fit_fold", "run_regressions",
           "finite_or_none", "write_predictions"]

log = logging.getLogger("holovae")

FEATURES = ("hae", "zernike_inv")
REGRESSORS = ("linear", "random_forest", "mean")
# A reduced random-forest grid for quick demonstrations (8 points instead of the paper's 48).
SMALL_GRID = {"max_features": [1.0, "sqrt"], "min_samples_leaf": [2, 5], "n_estimators": [32, 64]}
PREDICTION_COLUMNS = ("complex_id", "fold", "seed", "regressor", "measured", "predicted")


def regress_lba(data_path, split_path, features: str, *, model=None, regressors=REGRESSORS, seeds=(0, 1, 2),
                protocol: str = "paper", rf_grid: str = "paper", allow_missing: bool = False, n_jobs=None,
                batch_size: int = 512, device: str = "cpu") -> tuple[dict, list[tuple]]:
    """``(results JSON, prediction rows)`` of ``holovae lba-regress``: every regressor of
    ``protocol`` fitted per seed on each fold of the split at ``split_path`` (aligned with
    :func:`~holovae.data.lba.folds.align_split`), on the ``features`` of the LBA data at
    ``data_path`` (``model``: the encoder of ``"hae"``); ``rf_grid`` "paper" (48 points) or
    "small" (:data:`SMALL_GRID`); rows as :data:`PREDICTION_COLUMNS`."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct (a repeated seed only repeats a fit), got {list(seeds)}")
    if features == "hae" and not model:
        raise ValueError("--features hae needs --model (the encoder whose z are summed over each pocket)")
    split = read_split(split_path)
    data = read_data(data_path)
    aligned = align_split(split, split_path, data.complex_ids, data.skipped, data_path, allow_missing)
    x = complex_features(data, features, data_path, model, batch_size, device)
    y = np.asarray(data.affinity, dtype=np.float64)
    used = aligned.complexes
    log.info("lba-regress: %s features (d=%d) of %d complexes, %s split of %d fold(s), regressors %s, seeds %s",
             features, x.shape[1], len(used), split["kind"], len(aligned.folds), ", ".join(regressors), list(seeds))
    grid = SMALL_GRID if rf_grid == "small" else None
    results, rows = run_regressions(x, y, list(data.complex_ids), aligned.folds, regressors, seeds, grid=grid,
                                    n_jobs=n_jobs, protocol=protocol)
    out = {"features": features, "feature_dim": int(x.shape[1]), "n_complexes": int(len(used)),
           "n_folds": len(aligned.folds), "split_kind": split["kind"], "split_source": split.get("source"),
           "split_caption": split.get("caption"), "n_test": [int(len(f.test)) for f in aligned.folds],
           "n_dropped": len(aligned.dropped), "dropped": aligned.dropped, "seeds": list(seeds),
           "rf_grid": rf_grid, "protocol": protocol, "pocket": data_pocket(data.attrs),
           "data": str(data_path), "split": str(split_path),
           "model": str(model) if model else None, "results": results}
    return out, rows


def read_data(path):
    """The LBA dataset at ``path`` (:func:`~holovae.data.lba.read_lba_dataset`), with labels."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such LBA data file")
    data = read_lba_dataset(path)
    if len(data.complex_ids) == 0:
        raise ValueError(f"{path}: no complexes")
    unlabelled = [c for c, a in zip(data.complex_ids, data.affinity) if not math.isfinite(a)]
    if unlabelled:
        raise ValueError(f"{path}: {len(unlabelled)} complexes without an affinity (e.g. {', '.join(unlabelled[:3])}); "
                         "prepare it with an affinity table")
    return data


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------
def invariant_columns(irreps) -> np.ndarray:
    """Column indices of the l = 0 entries of data with ``irreps`` (every channel and radial
    order of a Zernike transform: its rotation-invariant part)."""
    from holovae._e3nn import o3

    irreps = o3.Irreps(irreps)
    cols = [np.arange(sl.start, sl.stop) for (_, ir), sl in zip(irreps, irreps.slices()) if ir.l == 0]
    if not cols:
        raise ValueError(f"irreps {irreps} have no l = 0 entries")
    return np.concatenate(cols)


def pocket_sums(rows: np.ndarray, complex_index: np.ndarray, n_complexes: int) -> np.ndarray:
    """``rows [N, d]`` summed per complex -> ``[n_complexes, d]`` float64."""
    out = np.zeros((n_complexes, rows.shape[1]), dtype=np.float64)
    np.add.at(out, complex_index, rows.astype(np.float64))
    return out


def latent_rows(data, data_path, model_path, batch_size: int, device: str) -> np.ndarray:
    """z ``[N, Z]`` of every pocket row, after checking that the model was trained on data
    transformed the same way (an error lists every mismatch)."""
    import torch

    from ..data.lba import model_data_attrs, transform_mismatches
    from ..embed import embed
    from ..models.checkpoint import load_model

    model_attrs = model_data_attrs(model_path)
    mismatches = transform_mismatches(data.attrs, model_attrs)
    if mismatches:
        raise ValueError(f"{data_path} was not transformed like the training data of {model_path}: "
                         f"{'; '.join(mismatches)} (prepare it with `holovae prepare-lba --model {model_path}`)")
    model = load_model(model_path, device)
    return embed(model, torch.from_numpy(np.ascontiguousarray(data.coefficients)), batch_size=batch_size,
                 reconstructions=False)["z"].numpy()


def complex_features(data, features: str, data_path, model_path=None, batch_size: int = 512,
                     device: str = "cpu") -> np.ndarray:
    """Per-complex feature vectors ``[M, d]`` of an LBA dataset (see the module docstring)."""
    if features == "hae":
        if model_path is None:
            raise ValueError("--features hae needs --model (the encoder whose z are summed over each pocket)")
        rows = latent_rows(data, data_path, model_path, batch_size, device)
    elif features == "zernike_inv":
        rows = np.asarray(data.coefficients)[:, invariant_columns(data.irreps)]
    else:
        raise ValueError(f"features must be one of {FEATURES}, got {features!r}")
    return pocket_sums(rows, data.complex_index, len(data.complex_ids))


# ------------------------------------------------------------------------------------------------
# fits
# ------------------------------------------------------------------------------------------------
def fit_fold(regressor: str, x: np.ndarray, y: np.ndarray, fold: FoldRows, seed: int, *,
             grid: dict | None, n_jobs, protocol: str = "paper") -> tuple[np.ndarray, dict]:
    """Fit ``regressor`` of ``protocol`` on the fold's train set (choosing on its val set) with
    ``seed``; ``(test predictions, what was chosen)``."""
    from .regression import fit_methods

    kwargs = {"grid": grid, "n_jobs": n_jobs} if regressor == "random_forest" else {}
    model = fit_methods(protocol)[regressor](x[fold.train], y[fold.train], x[fold.val], y[fold.val], seed=seed,
                                             **kwargs)
    return np.asarray(model.predict(x[fold.test]), dtype=np.float64), model.chosen


def _summary(per_seed: list[dict]) -> dict:
    """``{metric: mean, metric_std: std}`` over the seeds (std ddof=1; nan for one seed)."""
    from .regression import METRICS

    out = {}
    for m in METRICS:
        values = np.array([r[m] for r in per_seed], dtype=np.float64)
        out[m] = float(values.mean())
        out[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return out


def run_regressions(x: np.ndarray, y: np.ndarray, complex_ids, folds: list[FoldRows], regressors, seeds, *,
                    grid: dict | None, n_jobs=None, protocol: str = "paper") -> tuple[dict, list[tuple]]:
    """``(results, prediction rows)``: per regressor the pooled test metrics of every seed
    (``per_seed``), their mean ± std, and for the random forest the grid point chosen per seed
    and fold; rows ``(complex_id, fold, seed, regressor, measured, predicted)``."""
    from .regression import regression_metrics

    results, rows = {}, []
    for regressor in regressors:
        per_seed, chosen = [], []
        for seed in seeds:
            measured, predicted = [], []
            for k, fold in enumerate(folds):
                pred, info = fit_fold(regressor, x, y, fold, seed, grid=grid, n_jobs=n_jobs, protocol=protocol)
                measured.append(y[fold.test])
                predicted.append(pred)
                rows.extend((complex_ids[i], k, seed, regressor, float(y[i]), float(p)) for i, p in zip(fold.test, pred))
                if info:
                    chosen.append({"seed": seed, "fold": k, **info})
            per_seed.append({"seed": seed, **regression_metrics(np.concatenate(measured), np.concatenate(predicted))})
        results[regressor] = {**_summary(per_seed), "per_seed": per_seed}
        if regressor == "random_forest":
            results[regressor]["rf_params"] = chosen
        elif regressor == "linear":
            results[regressor]["linear_fits"] = chosen
        log.info("%s: RMSD %.3f ± %.3f, Pearson %.3f ± %.3f over seeds %s", regressor, results[regressor]["rmsd"],
                 results[regressor]["rmsd_std"], results[regressor]["pearson"], results[regressor]["pearson_std"],
                 list(seeds))
    return results, rows


# ------------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------------
def finite_or_none(obj):
    """``obj`` with every non-finite float replaced by ``None``: an undefined correlation (a
    constant prediction) becomes JSON ``null`` rather than the non-standard ``NaN``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_predictions(path, rows: list[tuple]) -> None:
    """The prediction rows as CSV (:data:`PREDICTION_COLUMNS`; floats written exactly), atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(PREDICTION_COLUMNS)
    writer.writerows((cid, k, seed, reg, repr(m), repr(p)) for cid, k, seed, reg, m, p in rows)
    write_text_atomic(path, buf.getvalue())
