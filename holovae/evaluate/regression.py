"""Regression of binding affinity from a per-complex feature vector (the paper's appendix on
ligand binding affinity; docs/fidelity.md#lba): the paper's linear regressor and random-forest
grid, its four metrics, fits repeated over distinct seeds, and grouped cross-validation splits
for small sets.

A *fit method* here is a callable ``method(x_train, y_train, x_val, y_val, *, seed, **kw)``
returning an object with ``predict(x [N, d]) -> [N]`` and ``chosen`` (a dict of what was
chosen): :func:`fit_linear_regressor`, :func:`fit_random_forest` and :func:`mean_predictor` all
are, so :func:`repeated_fits` runs any of them.

Two protocols (:func:`fit_methods`): ``paper`` -- the paper's text, these functions -- and
``authors`` -- the released code's choices (:mod:`holovae.evaluate.regression_authors`: one
bootstrap resample, a mean of 10 forests, a linear layer on raw features keeping its final
weights). docs/fidelity.md#lba lists every difference.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .latent import single_thread, to_numpy

__all__ = [
    "PAPER_GRID", "METRICS", "regression_metrics", "LinearRegressor", "fit_linear_regressor",
    "RandomForestFit", "fit_random_forest", "MeanPredictor", "mean_predictor", "RepeatedFits",
    "repeated_fits", "grouped_cv_splits", "FIT_METHODS", "PROTOCOLS", "fit_methods",
]

# The paper's random-forest grid. ``max_features`` 1.0 and 0.333 are fractions of the features
# (sklearn reads a float that way), "sqrt" is sqrt(d) features per split.
PAPER_GRID: dict[str, list] = {
    "max_features": [1.0, 0.333, "sqrt"],
    "min_samples_leaf": [2, 5, 10, 15],
    "n_estimators": [32, 64, 100, 200],
}

METRICS = ("rmsd", "pearson", "spearman", "kendall")


# ---------------------------------------------------------------------------------- metrics


def as_targets(y) -> np.ndarray:
    """``y`` as a float64 vector ``[N]`` (``[N, 1]`` is accepted)."""
    y = to_numpy(y).astype(np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"targets must have shape [N] or [N, 1], got {y.shape}")
    return y


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """The paper's four LBA metrics of predictions ``y_pred [N]`` against ``y_true [N]``.

    ``rmsd``: root mean squared error (the paper's "RMSD"); ``pearson``: Pearson's r;
    ``spearman``: Spearman's rho (ties get average ranks); ``kendall``: Kendall's tau-b (the
    variant that corrects for ties, scipy's default).

    A correlation is undefined when either vector is constant (a model that predicts one value,
    such as :func:`mean_predictor`) or when N < 2: it is returned as ``nan`` without calling
    scipy, which would emit a ``ConstantInputWarning`` per call, i.e. per seed and per fold.
    """
    from scipy import stats

    y_true, y_pred = as_targets(y_true), as_targets(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if len(y_true) == 0:
        raise ValueError("no samples to score")
    rmsd = float(np.sqrt(np.mean((y_true - y_pred) ** 2)))
    if len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return {"rmsd": rmsd, "pearson": math.nan, "spearman": math.nan, "kendall": math.nan}
    return {
        "rmsd": rmsd,
        "pearson": float(stats.pearsonr(y_true, y_pred)[0]),
        "spearman": float(stats.spearmanr(y_true, y_pred)[0]),
        "kendall": float(stats.kendalltau(y_true, y_pred)[0]),
    }


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


# ---------------------------------------------------------------------- linear regression


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(mean [d], std [d])`` of ``x [N, d]``; a constant column gets std 1 (it is
    only centred) so that it cannot turn into inf/nan."""
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 1e-12, std, 1.0)


@dataclass
class LinearRegressor:
    """A fitted one-layer regressor, ``y = ((x - x_mean) / x_std) @ weight + bias`` in
    standardised target units, mapped back with ``y_mean``, ``y_std``.

    ``weight [d]``, ``bias`` and the statistics are numpy (float64), so predicting needs no torch.
    ``best_epoch`` (1-based) is the epoch whose weights are kept (lowest validation MSE);
    ``lr_history`` / ``val_history`` hold the LR and the validation MSE of every epoch run.
    """

    weight: np.ndarray
    bias: float
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    best_epoch: int
    best_val_mse: float
    lr_history: list[float] = field(default_factory=list)
    val_history: list[float] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.lr_history)

    @property
    def chosen(self) -> dict:
        return {"best_epoch": int(self.best_epoch), "val_mse": float(self.best_val_mse)}

    def predict(self, x) -> np.ndarray:
        """``x [N, d]`` -> predictions ``[N]`` in the units of the training targets."""
        x = to_numpy(x).astype(np.float64)
        return ((x - self.x_mean) / self.x_std @ self.weight + self.bias) * self.y_std + self.y_mean


def fit_linear_regressor(x_train, y_train, x_val, y_val, *, epochs: int = 250, lr: float = 0.01,
                         batch_size: int = 32, patience: int = 10, seed: int,
                         early_stop: bool = False) -> LinearRegressor:
    """The paper's linear regressor: one linear layer on ``x [N, d]`` -> ``y [N]``, MSE loss,
    Adam, mini-batches of ``batch_size`` reshuffled each epoch.

    Schedule as :func:`holovae.evaluate.latent.fit_linear_classifier`: the LR is divided by 10
    whenever ``patience`` epochs pass without a lower validation MSE, and the weights of the
    best validation epoch are returned. The paper runs all ``epochs``, the default here;
    ``early_stop=True`` ends training where a second division would happen, as the classifier.
    ``seed`` sets the initial weights and the batch order (independently of torch's global RNG).
    """
    with single_thread():
        return _fit_linear(x_train, y_train, x_val, y_val, epochs, lr, batch_size, patience, seed, early_stop)


def _fit_linear(x_train, y_train, x_val, y_val, epochs, lr, batch_size, patience, seed, early_stop):
    """The body of :func:`fit_linear_regressor` (same arguments, positional)."""
    xt_np, xv_np = (to_numpy(x).astype(np.float64) for x in (x_train, x_val))
    yt_np, yv_np = as_targets(y_train), as_targets(y_val)
    if len(xt_np) != len(yt_np) or len(xv_np) != len(yv_np):
        raise ValueError("features and targets differ in length")
    if len(xv_np) == 0:
        raise ValueError("the linear regressor needs a validation set (LR schedule, weight choice)")
    # Standardise with *train* statistics only (val/test must not inform the fit). Features:
    # summed pocket embeddings and Zernike coefficients span orders of magnitude, while one fixed
    # Adam LR (0.01) only suits inputs of unit scale. Targets: the pK mean (~6) would otherwise
    # have to be learnt by the bias at ~lr per step, which on a small train set (a few batches
    # per epoch) can take more steps than 250 epochs hold. Both are affine, so the model class and
    # the optimum of the MSE are unchanged.
    x_mean, x_std = _standardiser(xt_np)
    y_mean = float(yt_np.mean())
    y_std = float(yt_np.std()) if yt_np.std() > 1e-12 else 1.0

    def features(x):
        return torch.as_tensor((x - x_mean) / x_std, dtype=torch.float32)

    xt, xv = features(xt_np), features(xv_np)
    yt = torch.as_tensor((yt_np - y_mean) / y_std, dtype=torch.float32)
    yv = torch.as_tensor((yv_np - y_mean) / y_std, dtype=torch.float32)

    gen = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(xt.shape[1], 1)
    with torch.no_grad():   # seeded init independent of the global RNG (PyTorch's default bound)
        bound = 1 / max(1, xt.shape[1]) ** 0.5
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.uniform_(-bound, bound, generator=gen)
    opt = torch.optim.Adam(layer.parameters(), lr=lr)

    def val_mse() -> float:   # in original target units, comparable across runs
        with torch.no_grad():
            return float(((layer(xv)[:, 0] - yv) ** 2).mean()) * y_std ** 2

    best_val, best_epoch, best_state = math.inf, 0, copy.deepcopy(layer.state_dict())
    since_gain, reduced = 0, False
    lrs, vals = [], []
    for epoch in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        order = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(xt), batch_size):   # plain tensor slicing: no DataLoader overhead
            idx = order[s:s + batch_size]
            loss = torch.nn.functional.mse_loss(layer(xt[idx])[:, 0], yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        vals.append(val_mse())
        if vals[-1] < best_val:
            best_val, best_epoch, since_gain = vals[-1], epoch + 1, 0
            best_state = copy.deepcopy(layer.state_dict())
            continue
        since_gain += 1
        if since_gain >= patience:
            if reduced and early_stop:
                break
            for g in opt.param_groups:
                g["lr"] /= 10
            reduced, since_gain = True, 0
    weight = best_state["weight"][0].double().numpy()
    bias = float(best_state["bias"][0])
    return LinearRegressor(weight, bias, x_mean, x_std, y_mean, y_std, best_epoch, best_val, lrs, vals)


# ---------------------------------------------------------------------------- random forest


@dataclass
class RandomForestFit:
    """The grid point with the lowest validation RMSE and its forest.

    ``model``: a ``RandomForestRegressor`` fitted on the train set with ``params``;
    ``val_rmse``: that point's validation RMSE; ``grid_rmse``: ``[(params, val RMSE)]`` of every
    grid point, in grid order."""

    model: object
    params: dict
    val_rmse: float
    grid_rmse: list[tuple[dict, float]] = field(default_factory=list)

    def predict(self, x) -> np.ndarray:
        return self.model.predict(to_numpy(x))

    @property
    def chosen(self) -> dict:
        return {"params": self.params, "val_rmse": float(self.val_rmse)}


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the ``grid`` values as a dict, in ``itertools.product`` order."""
    import itertools

    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def rmse_by_forest_size(forest, x_val: np.ndarray, y_val: np.ndarray, sizes) -> dict[int, float]:
    """Validation RMSE of the forests made of the first ``k`` trees of ``forest``, per ``k`` in
    ``sizes``. The first k trees of a forest grown with ``random_state=s`` are the trees of a
    k-tree forest with the same seed (sklearn draws one seed per tree, in order, from
    ``random_state``; tests/test_regression.py checks this against separate fits), so one forest
    of the largest size scores every size. Tree predictions are summed in tree order, as
    sklearn's ``predict`` does."""
    wanted = set(sizes)
    out, total = {}, np.zeros(len(x_val))
    for k, tree in enumerate(forest.estimators_, start=1):
        total += tree.predict(x_val)
        if k in wanted:
            out[k] = _rmse(y_val, total / k)
    return out


def grid_key(params: dict) -> tuple:
    """A hashable key of one grid point, independent of the order of its arguments."""
    return tuple(sorted(params.items(), key=lambda kv: kv[0]))


def fit_random_forest(x_train, y_train, x_val, y_val, *, grid: dict[str, list] | None = None,
                      seed: int, n_jobs: int | None = None) -> RandomForestFit:
    """The paper's random forest: a ``RandomForestRegressor`` per point of ``grid``
    (default :data:`PAPER_GRID`) fitted on the train set; the point with the lowest validation
    RMSE wins (ties: the first in grid order) and is returned with its forest.

    ``grid`` maps ``RandomForestRegressor`` keyword arguments to lists of values (without
    ``n_estimators``: sklearn's default, 100). The ``n_estimators`` values are scored from one
    forest of the largest size per combination of the other arguments (see
    :func:`rmse_by_forest_size`), which halves the tree count of the paper's grid; the chosen
    point is then fitted on its own. ``seed`` is every forest's ``random_state``; ``n_jobs`` its
    tree-level parallelism (None: one core).
    """
    from sklearn.ensemble import RandomForestRegressor

    grid = dict(PAPER_GRID if grid is None else grid)
    grid.setdefault("n_estimators", [100])
    sizes = sorted(set(grid["n_estimators"]))
    others = {k: v for k, v in grid.items() if k != "n_estimators"}
    xt, xv = to_numpy(x_train), to_numpy(x_val)
    yt, yv = as_targets(y_train), as_targets(y_val)
    if len(xv) == 0:
        raise ValueError("the random-forest grid needs a validation set to choose from")

    rmse_of: dict[tuple, float] = {}
    for params in grid_points(others):
        forest = RandomForestRegressor(n_estimators=sizes[-1], random_state=seed, n_jobs=n_jobs, **params)
        forest.fit(xt, yt)
        for k, rmse in rmse_by_forest_size(forest, xv, yv, sizes).items():
            rmse_of[grid_key(dict(params, n_estimators=k))] = rmse
    grid_rmse = [(params, rmse_of[grid_key(params)]) for params in grid_points(grid)]
    best_params, best_rmse = min(grid_rmse, key=lambda pr: pr[1])   # min keeps the first of ties
    model = RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **best_params).fit(xt, yt)
    return RandomForestFit(model, best_params, best_rmse, grid_rmse)


# --------------------------------------------------------------------------------- baseline


@dataclass
class MeanPredictor:
    """Predicts the train-set mean ``value`` for every input (RMSD baseline; its correlations
    are undefined, see :func:`regression_metrics`)."""

    value: float

    def predict(self, x) -> np.ndarray:
        return np.full(len(to_numpy(x)), self.value)

    @property
    def chosen(self) -> dict:
        return {}


def mean_predictor(x_train, y_train, x_val=None, y_val=None, *, seed: int | None = None) -> MeanPredictor:
    """The train-target mean as a fit method (features, validation set and ``seed`` unused;
    they are accepted so that :func:`repeated_fits` can run it like the others)."""
    return MeanPredictor(float(as_targets(y_train).mean()))


# ---------------------------------------------------------------------------- repeated fits


FIT_METHODS: dict[str, Callable] = {
    "linear": fit_linear_regressor,
    "random_forest": fit_random_forest,
    "mean": mean_predictor,
}
PROTOCOLS = ("paper", "authors")


def fit_methods(protocol: str = "paper") -> dict[str, Callable]:
    """The fit methods of ``protocol`` by regressor name: ``paper`` (:data:`FIT_METHODS`: one
    forest per grid point on the whole train set; a linear layer on standardised features
    keeping its best validation epoch) or ``authors`` (the released code's bagged forest and raw
    linear layer, :mod:`holovae.evaluate.regression_authors`). The mean predictor is the same in
    both."""
    if protocol == "paper":
        return dict(FIT_METHODS)
    if protocol == "authors":
        from .regression_authors import fit_bagged_forest, fit_linear_authors

        return {"linear": fit_linear_authors, "random_forest": fit_bagged_forest, "mean": mean_predictor}
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


@dataclass
class RepeatedFits:
    """Test metrics of one fit method repeated over ``seeds``.

    ``per_seed[i]``: :func:`regression_metrics` of the fit with ``seeds[i]``; ``mean`` / ``std``:
    per metric over the seeds (std with ddof=1, the sample estimate: ``nan`` for one seed)."""

    method: str
    seeds: list[int]
    per_seed: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]

    def formatted(self, metric: str, digits: int = 3) -> str:
        """``"mean ± std"`` of ``metric``, e.g. ``"1.412 ± 0.021"``."""
        return f"{self.mean[metric]:.{digits}f} ± {self.std[metric]:.{digits}f}"


def repeated_fits(method: str | Callable, x_train, y_train, x_val, y_val, x_test, y_test,
                  seeds, protocol: str = "paper", **method_kwargs) -> RepeatedFits:
    """Fit ``method`` once per seed on the train set (choosing on the validation set), score each
    fit on the test set with :func:`regression_metrics`, and summarise as mean ± std.

    ``method``: ``"linear"``, ``"random_forest"``, ``"mean"`` (of :func:`fit_methods` ``(protocol)``) or a fit method
    ``method(x_train, y_train, x_val, y_val, *, seed, **method_kwargs) -> model.predict``.
    ``seeds`` must be distinct: the authors' repeats reused one seed, so their spread measured
    nothing but nondeterminism. Features ``x_* [N_*, d]``, targets ``y_* [N_*]``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct (repeating one only repeats a fit), got {seeds}")
    name = method if isinstance(method, str) else getattr(method, "__name__", repr(method))
    fit = fit_methods(protocol)[method] if isinstance(method, str) else method
    y_test = as_targets(y_test)
    per_seed = []
    for seed in seeds:
        model = fit(x_train, y_train, x_val, y_val, seed=seed, **method_kwargs)
        per_seed.append(regression_metrics(y_test, model.predict(x_test)))
    table = {m: np.array([r[m] for r in per_seed]) for m in METRICS}
    mean = {m: float(v.mean()) for m, v in table.items()}
    std = {m: float(v.std(ddof=1)) if len(v) > 1 else math.nan for m, v in table.items()}
    return RepeatedFits(name, seeds, per_seed, mean, std)


# ---------------------------------------------------------------------- grouped validation


def grouped_cv_splits(groups, n_folds: int = 5, seed: int = 0,
                      val_fraction: float = 0.1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cross-validation "split by protein": ``n_folds`` of ``(train, val, test)`` index arrays
    over ``groups [N]`` (any hashable label per sample, e.g. a sequence-identity cluster), in
    which no group is ever divided between two sets.

    The groups, in a seeded random order, go one by one to the fold with the fewest samples so
    far (folds come out balanced in samples, not in groups); each fold is the test set once.
    Of the other groups, again in a seeded order, whole groups form the validation set until it
    holds at least ``val_fraction`` of the non-test samples (at least one group when
    ``val_fraction > 0``); the rest is train. Index arrays are sorted int64; the same arguments
    give the same splits.
    """
    groups = to_numpy(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must have shape [N], got {groups.shape}")
    labels, group_of = np.unique(groups, return_inverse=True)   # group_of [N]: index into labels
    if n_folds < 2 or len(labels) < n_folds:
        raise ValueError(f"{n_folds} folds need n_folds >= 2 and at least as many groups, got {len(labels)} groups")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    size = np.bincount(group_of, minlength=len(labels))

    fold_of = np.empty(len(labels), dtype=np.int64)   # [n_groups]
    fold_size = np.zeros(n_folds, dtype=np.int64)
    for g in rng.permutation(len(labels)):
        fold_of[g] = int(np.argmin(fold_size))   # argmin: the lowest fold index among ties
        fold_size[fold_of[g]] += size[g]

    splits = []
    for fold in range(n_folds):
        rest = rng.permutation(np.flatnonzero(fold_of != fold))
        wanted = val_fraction * size[rest].sum()
        n_val = 0
        if val_fraction > 0:
            n_val = 1 + int(np.searchsorted(np.cumsum(size[rest]), wanted))   # first prefix >= wanted
            n_val = min(n_val, len(rest))
        if n_val >= len(rest):
            raise ValueError(f"fold {fold}: no group left for training (val_fraction {val_fraction} too large "
                             f"for {len(rest)} groups)")
        role = np.full(len(labels), 0)   # 0 train, 1 val, 2 test
        role[rest[:n_val]] = 1
        role[fold_of == fold] = 2
        sample_role = role[group_of]
        splits.append(tuple(np.flatnonzero(sample_role == r).astype(np.int64) for r in (0, 1, 2)))
    return splits
