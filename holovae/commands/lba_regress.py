"""`holovae lba-regress`: binding affinity regressed from per-complex features of the pocket
residues (the paper's LBA experiment), over the folds of a ``holovae lba-split`` JSON.

Features of a complex (summed over its pocket residues, so that every complex gives one vector
whatever the size of its pocket):

* ``hae``: the invariant latent z (the encoder's mean, :func:`holovae.embed.embed`) of each
  pocket residue's neighbourhood; the data must have been transformed as the model's training
  data (:func:`holovae.data.lba.transform_mismatches`);
* ``zernike_inv``: the l = 0 Zernike coefficients of each neighbourhood (every channel and radial
  order), the rotation-invariant part of the data without a model.

Every regressor (:func:`holovae.evaluate.regression.fit_methods` of ``--protocol``: the paper's
text, or the authors' released code) is fitted per seed on each fold's train set, choosing on
its validation set, and predicts its test set. For a CV split the
test predictions of all folds are pooled per seed and scored together
(:func:`~holovae.evaluate.regression.regression_metrics`), since a fold of a small set is too
small to score alone; metrics are then mean ± std over the seeds (std with ddof=1).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic

log = logging.getLogger("holovae")

FEATURES = ("hae", "zernike_inv")
REGRESSORS = ("linear", "random_forest", "mean")
# A reduced random-forest grid for quick demonstrations (8 points instead of the paper's 48).
SMALL_GRID = {"max_features": [1.0, "sqrt"], "min_samples_leaf": [2, 5], "n_estimators": [32, 64]}
PREDICTION_COLUMNS = ("complex_id", "fold", "seed", "regressor", "measured", "predicted")


# ------------------------------------------------------------------------------------------------
# split
# ------------------------------------------------------------------------------------------------
def read_split(path) -> dict:
    """A ``holovae lba-split`` JSON, checked: ``kind`` "cv" or "fixed", a non-empty list of
    ``folds`` with id lists ``train``, ``val``, ``test`` that do not overlap within a fold, and,
    for "cv", test sets that do not overlap between folds (their predictions are pooled)."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such split file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a split JSON ({exc})") from None
    folds = split.get("folds") if isinstance(split, dict) else None
    if not isinstance(folds, list) or not folds or split.get("kind") not in ("cv", "fixed"):
        raise ValueError(f"{path}: not an `holovae lba-split` file (needs 'kind' cv/fixed and a list of 'folds')")
    tested: dict = {}
    for k, fold in enumerate(folds):
        if not isinstance(fold, dict) or any(not isinstance(fold.get(s), list) for s in ("train", "val", "test")):
            raise ValueError(f"{path}: fold {k} lacks an id list 'train', 'val' or 'test'")
        sets = [set(map(str, fold[s])) for s in ("train", "val", "test")]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise ValueError(f"{path}: fold {k} has ids in two of its sets")
        for i in sets[2]:
            if split["kind"] == "cv" and i in tested:
                raise ValueError(f"{path}: {i} is in the test sets of folds {tested[i]} and {k}")
            tested[i] = k
    return split


@dataclass
class FoldRows:
    """One fold as row indices into the per-complex arrays of the data (``train``, ``val``,
    ``test``: int64, in the split's order)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class AlignedSplit:
    """The split's folds over the complexes of the data, ``dropped`` ({id: reason}) the split's
    complexes that the data does not have."""

    folds: list[FoldRows]
    dropped: dict = field(default_factory=dict)

    @property
    def complexes(self) -> np.ndarray:
        """Indices of every complex used (in any set of any fold), sorted."""
        return np.unique(np.concatenate([np.concatenate([f.train, f.val, f.test]) for f in self.folds]))


def align_split(split: dict, split_path, complex_ids, skipped: list, data_path, allow_missing: bool) -> AlignedSplit:
    """Map the split's ids to the data's complexes. A complex skipped when the data was
    prepared (listed in the data's ``skipped``) is dropped with a warning; an id the data never
    saw means split and data come from different complex sets, an error unless
    ``allow_missing``. Every set of every fold must keep at least one complex."""
    index = {str(c).lower(): k for k, c in enumerate(complex_ids)}
    skip_reason = {str(pid).lower(): reason for pid, reason in skipped}
    named = sorted({str(i).lower() for fold in split["folds"] for s in ("train", "val", "test") for i in fold[s]})
    absent = [i for i in named if i not in index]
    unknown = [i for i in absent if i not in skip_reason]
    if unknown and not allow_missing:
        raise ValueError(f"{split_path} names {len(unknown)} complex(es) that {data_path} neither holds nor lists as "
                         f"skipped: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} (split and data "
                         "made from different complexes? --allow-missing drops them)")
    dropped = {i: skip_reason.get(i, f"not in {data_path}") for i in absent}
    if dropped:
        log.warning("%d of the %d complexes of %s are not in %s and are dropped: %s", len(dropped), len(named),
                    split_path, data_path, "; ".join(f"{i}: {r}" for i, r in list(dropped.items())[:5]))
    folds = []
    for k, fold in enumerate(split["folds"]):
        rows = {s: np.array([index[i] for i in map(str.lower, map(str, fold[s])) if i in index], dtype=np.int64)
                for s in ("train", "val", "test")}
        empty = [s for s, r in rows.items() if len(r) == 0]
        if empty:
            raise ValueError(f"{split_path}: fold {k} has no complex of {data_path} left in its {'/'.join(empty)} "
                             f"set ({len(dropped)} of the split's complexes are missing from the data)")
        folds.append(FoldRows(**rows))
    return AlignedSplit(folds, dropped)


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------
def invariant_columns(irreps) -> np.ndarray:
    """Column indices of the l = 0 entries of data with ``irreps`` (every channel and radial
    order of a Zernike transform: its rotation-invariant part)."""
    from e3nn import o3

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

    from ..data.lba import transform_mismatches
    from ..embed import embed
    from ..models.checkpoint import load_model
    from .prepare_lba import model_data_attrs

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
    from ..evaluate.regression import fit_methods

    kwargs = {"grid": grid, "n_jobs": n_jobs} if regressor == "random_forest" else {}
    model = fit_methods(protocol)[regressor](x[fold.train], y[fold.train], x[fold.val], y[fold.val], seed=seed,
                                             **kwargs)
    return np.asarray(model.predict(x[fold.test]), dtype=np.float64), model.chosen


def _summary(per_seed: list[dict]) -> dict:
    """``{metric: mean, metric_std: std}`` over the seeds (std ddof=1; nan for one seed)."""
    from ..evaluate.regression import METRICS

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
    from ..evaluate.regression import regression_metrics

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


# ------------------------------------------------------------------------------------------------
# command
# ------------------------------------------------------------------------------------------------
def data_pocket(attrs: dict) -> dict:
    """How the data's pockets were cut (rule, cutoff, the protocol they match, in words), from
    the attributes ``holovae prepare-lba`` stored; data prepared before pocket rules existed used
    the Cα rule."""
    from ..data.lba_pockets import pocket_description, pocket_protocol

    rule, cutoff = str(attrs.get("pocket_rule", "ca")), float(attrs.get("pocket_cutoff", 10.0))
    return {"rule": rule, "cutoff": cutoff, "protocol": pocket_protocol(rule, cutoff),
            "text": pocket_description(rule, cutoff)}


def read_data(path):
    """The LBA dataset at ``path`` (:func:`~holovae.data.lba.read_lba_dataset`), with labels."""
    from ..data.lba import read_lba_dataset

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


def _check_seeds(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct (a repeated seed only repeats a fit), got {seeds}")
    return seeds


def run(args) -> None:
    import torch

    from ..atomic import write_json_atomic
    from .options import parse_meta

    meta = parse_meta(args.meta)   # before the slow part, so that a typo fails at once
    seeds = _check_seeds([int(s) for s in args.seeds])
    regressors = list(dict.fromkeys(args.regressors))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.features == "hae" and not args.model:
        raise ValueError("--features hae needs --model (the encoder whose z are summed over each pocket)")
    split = read_split(args.split)
    data = read_data(args.data)
    aligned = align_split(split, args.split, data.complex_ids, data.skipped, args.data, args.allow_missing)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    x = complex_features(data, args.features, args.data, args.model, args.batch_size, device)
    y = np.asarray(data.affinity, dtype=np.float64)
    used = aligned.complexes
    log.info("lba-regress: %s features (d=%d) of %d complexes, %s split of %d fold(s), regressors %s, seeds %s",
             args.features, x.shape[1], len(used), split["kind"], len(aligned.folds), ", ".join(regressors), seeds)
    grid = SMALL_GRID if args.rf_grid == "small" else None
    results, rows = run_regressions(x, y, list(data.complex_ids), aligned.folds, regressors, seeds, grid=grid,
                                    n_jobs=args.threads, protocol=args.protocol)
    out = {"features": args.features, "feature_dim": int(x.shape[1]), "n_complexes": int(len(used)),
           "n_folds": len(aligned.folds), "split_kind": split["kind"], "split_source": split.get("source"),
           "split_caption": split.get("caption"), "n_test": [int(len(f.test)) for f in aligned.folds],
           "n_dropped": len(aligned.dropped), "dropped": aligned.dropped, "seeds": seeds,
           "rf_grid": args.rf_grid, "protocol": args.protocol, "pocket": data_pocket(data.attrs),
           "data": str(args.data), "split": str(args.split),
           "model": str(args.model) if args.model else None, "results": results}
    clash = sorted(set(meta) & set(out))
    if clash:
        raise ValueError(f"--meta keys {clash} collide with output keys")
    if args.predictions:
        write_predictions(args.predictions, rows)
    write_json_atomic(args.out, finite_or_none({**out, **meta}))
    log.info("wrote %s%s", args.out, f" and {args.predictions}" if args.predictions else "")


def register(sub) -> None:
    p = sub.add_parser("lba-regress", help="binding-affinity regression from per-complex pocket features "
                                           "(linear, random forest, mean baseline) over an lba-split")
    p.add_argument("--data", required=True, help="LBA HDF5 from `holovae prepare-lba`")
    p.add_argument("--split", required=True, help="split JSON from `holovae lba-split`")
    p.add_argument("--features", required=True, choices=FEATURES,
                   help="hae: the model's z summed over the pocket; zernike_inv: the l=0 coefficients summed")
    p.add_argument("--model", default=None, help="best.pt of the encoder (needed for --features hae)")
    p.add_argument("--regressors", nargs="+", default=list(REGRESSORS), choices=REGRESSORS,
                   help="regressors to fit (mean: the mean of the training affinities, the trivial baseline)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="distinct seeds, one fit each")
    p.add_argument("--out", required=True, help="output JSON of metrics")
    p.add_argument("--predictions", default=None, help="CSV of test predictions: " + ", ".join(PREDICTION_COLUMNS))
    p.add_argument("--protocol", default="paper", choices=["paper", "authors"],
                   help="regressors as the paper's text (default) or as the authors' released code (one bootstrap "
                        "resample, mean of 10 forests, a linear layer on raw features keeping its final weights); "
                        "see docs/fidelity.md#lba")
    p.add_argument("--rf-grid", default="paper", choices=["paper", "small"],
                   help="random-forest grid: the paper's 48 points, or 8 for quick demos")
    p.add_argument("--meta", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="copied into the output (value parsed as YAML), e.g. --meta model=hae_z16 (repeatable)")
    p.add_argument("--allow-missing", action="store_true",
                   help="drop split complexes the data never saw (default: only those skipped at preparation)")
    p.add_argument("--threads", type=int, default=None, help="torch threads and random-forest jobs")
    p.add_argument("--batch-size", type=int, default=512, help="embedding batch size (hae)")
    p.add_argument("--device", default="cpu", help="embedding device: cpu, cuda, auto")
    p.set_defaults(func=run)
