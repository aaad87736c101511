"""Ligand-binding-affinity regression: metrics, the linear regressor, the random-forest grid,
repeated fits over seeds and grouped cross-validation (holovae/evaluate/regression.py)."""
import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_squared_error

from holovae.evaluate.regression import (PAPER_GRID, fit_linear_regressor, fit_random_forest,
                                         grouped_cv_splits, mean_predictor, regression_metrics,
                                         repeated_fits)


def linear_data(n, dim=6, noise=0.05, seed=0):
    """``x [n, dim]`` with feature scales from 0.01 to 100 (as raw Zernike / summed embeddings)
    and ``y = x @ w + 6 + noise`` (pK-like offset): a known linear map."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-2, 2, dim)
    x = rng.standard_normal((n, dim)) * scales
    w = rng.standard_normal(dim) / scales
    return x, x @ w + 6.0 + noise * rng.standard_normal(n)


def split(x, y, n_train, n_val):
    return (x[:n_train], y[:n_train], x[n_train:n_train + n_val], y[n_train:n_train + n_val],
            x[n_train + n_val:], y[n_train + n_val:])


# ---------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_scipy_and_sklearn(ties):
    rng = np.random.default_rng(1)
    y = rng.normal(6, 2, 200)
    p = y + rng.normal(0, 1.5, 200)
    if ties:   # affinities are often reported to 1-2 decimals: many ties in both vectors
        y, p = np.round(y), np.round(p)
    m = regression_metrics(y, p)
    assert m["rmsd"] == pytest.approx(math.sqrt(mean_squared_error(y, p)), rel=1e-12)
    assert m["pearson"] == pytest.approx(stats.pearsonr(y, p)[0], rel=1e-12)
    assert m["spearman"] == pytest.approx(stats.spearmanr(y, p)[0], rel=1e-12)
    assert m["kendall"] == pytest.approx(stats.kendalltau(y, p)[0], rel=1e-12)


def test_metrics_of_constant_predictions_are_nan_without_warnings():
    y = np.array([5.0, 6.0, 7.5, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # scipy's ConstantInputWarning would fail the test
        m = regression_metrics(y, np.full(4, 5.5))
    assert m["rmsd"] == pytest.approx(math.sqrt(np.mean((y - 5.5) ** 2)))
    assert all(math.isnan(m[k]) for k in ("pearson", "spearman", "kendall"))


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        regression_metrics(np.zeros(3), np.zeros(4))


# ----------------------------------------------------------------------- linear regression


def test_linear_regressor_recovers_a_linear_map():
    x, y = linear_data(500)
    xt, yt, xv, yv, xe, ye = split(x, y, 350, 75)
    model = fit_linear_regressor(xt, yt, xv, yv, epochs=60, seed=0)
    pred = model.predict(xe)
    r2 = 1 - np.mean((pred - ye) ** 2) / np.var(ye)
    assert r2 > 0.99
    assert 1 <= model.best_epoch <= model.epochs_run == 60
    assert model.best_val_mse == pytest.approx(min(model.val_history))


def test_linear_regressor_is_deterministic_per_seed_and_differs_across_seeds():
    x, y = linear_data(200, noise=0.5)
    xt, yt, xv, yv, xe, _ = split(x, y, 120, 40)
    a = fit_linear_regressor(xt, yt, xv, yv, epochs=15, seed=3).predict(xe)
    b = fit_linear_regressor(xt, yt, xv, yv, epochs=15, seed=3).predict(xe)
    c = fit_linear_regressor(xt, yt, xv, yv, epochs=15, seed=4).predict(xe)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_linear_regressor_divides_the_lr_after_patience_epochs_without_gain():
    # validation targets are the negated train map: the better the fit, the worse validation,
    # so after the first epochs the validation MSE only grows
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3))
    y = np.concatenate([x[:40, 0], -x[40:, 0]])
    model = fit_linear_regressor(x[:40], y[:40], x[40:], y[40:], epochs=30, patience=3, seed=0)
    lrs = np.array(model.lr_history)
    assert model.best_epoch <= 3
    # 0.01 until `patience` epochs after the best one, then one division by 10 per `patience` epochs
    expected = [0.01 * 10.0 ** -max(0, (e - model.best_epoch) // 3) for e in range(30)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    # early_stop ends where a second division would happen
    stopped = fit_linear_regressor(x[:40], y[:40], x[40:], y[40:], epochs=30, patience=3, seed=0, early_stop=True)
    assert stopped.epochs_run == model.best_epoch + 6 and stopped.lr_history[-1] == pytest.approx(0.001)
    np.testing.assert_array_equal(stopped.weight, model.weight)   # the same best epoch is kept


# ---------------------------------------------------------------------------- random forest


def test_random_forest_chooses_the_grid_point_with_lowest_validation_rmse():
    x, y = linear_data(160, dim=4, noise=0.3, seed=2)
    y = y + np.sin(x[:, 0])   # something for the trees to fit
    xt, yt, xv, yv, _, _ = split(x, y, 100, 40)
    grid = {"max_features": [1.0, "sqrt"], "min_samples_leaf": [2, 10], "n_estimators": [4, 8]}
    fit = fit_random_forest(xt, yt, xv, yv, grid=grid, seed=5)

    manual = []   # one separately fitted forest per grid point, as the paper's loop
    for mf, msl, n in itertools.product(*grid.values()):
        params = {"max_features": mf, "min_samples_leaf": msl, "n_estimators": n}
        forest = RandomForestRegressor(random_state=5, **params).fit(xt, yt)
        manual.append((params, math.sqrt(mean_squared_error(yv, forest.predict(xv)))))
    assert [p for p, _ in fit.grid_rmse] == [p for p, _ in manual]
    np.testing.assert_allclose([r for _, r in fit.grid_rmse], [r for _, r in manual], rtol=1e-12)
    best = min(manual, key=lambda pr: pr[1])
    assert fit.params == best[0] and fit.val_rmse == pytest.approx(best[1], rel=1e-12)
    chosen = RandomForestRegressor(random_state=5, **best[0]).fit(xt, yt)
    np.testing.assert_allclose(fit.predict(xv), chosen.predict(xv), rtol=1e-12)


def test_paper_grid_is_the_papers():
    assert PAPER_GRID == {"max_features": [1.0, 0.333, "sqrt"], "min_samples_leaf": [2, 5, 10, 15],
                          "n_estimators": [32, 64, 100, 200]}


# ---------------------------------------------------------------------------- repeated fits


def test_repeated_fits_use_distinct_seeds_and_summarise_them():
    x, y = linear_data(150, noise=1.0, seed=4)
    data = split(x, y, 90, 30)
    result = repeated_fits("linear", *data, seeds=[0, 1, 2], epochs=10)
    assert result.seeds == [0, 1, 2] and len(result.per_seed) == 3
    rmsds = [r["rmsd"] for r in result.per_seed]
    assert len(set(rmsds)) == 3   # different seeds, different fits
    assert result.mean["rmsd"] == pytest.approx(np.mean(rmsds))
    assert result.std["rmsd"] == pytest.approx(np.std(rmsds, ddof=1))
    assert "±" in result.formatted("pearson")
    with pytest.raises(ValueError, match="distinct"):
        repeated_fits("linear", *data, seeds=[1, 1], epochs=2)


def test_repeated_fits_runs_any_fit_method_with_its_seed():
    x, y = linear_data(60, seed=5)
    data = split(x, y, 30, 15)
    seen = []

    def method(x_train, y_train, x_val, y_val, *, seed):
        seen.append(seed)
        return mean_predictor(x_train, y_train)

    result = repeated_fits(method, *data, seeds=[7, 8])
    assert seen == [7, 8] and result.method == "method"
    assert result.per_seed[0]["rmsd"] == pytest.approx(np.sqrt(np.mean((data[5] - data[1].mean()) ** 2)))
    assert math.isnan(result.mean["pearson"])


# ---------------------------------------------------------------------- grouped validation


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_cv_never_splits_a_group(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 23, size=150).astype(str)   # 23 "proteins", uneven sizes
    splits = grouped_cv_splits(groups, n_folds=5, seed=seed, val_fraction=0.15)
    assert len(splits) == 5
    tested = np.concatenate([test for _, _, test in splits])
    assert np.array_equal(np.sort(tested), np.arange(150))   # every sample is tested exactly once
    for train, val, test in splits:
        assert len(train) and len(val) and len(test)
        assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(150))
        sets = [set(groups[idx]) for idx in (train, val, test)]
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    again = grouped_cv_splits(groups, n_folds=5, seed=seed, val_fraction=0.15)
    assert all(np.array_equal(a, b) for s, t in zip(splits, again) for a, b in zip(s, t))


def test_grouped_cv_needs_enough_groups():
    with pytest.raises(ValueError, match="groups"):
        grouped_cv_splits(["a", "a", "b"], n_folds=3)
