"""The authors' LBA regressors (``lba.protocol: authors``; holovae/evaluate/regression_authors.py)
against independent references: scikit-learn forests fitted here on a bootstrap resample drawn
here, and a fixture of the authors' own LinearRegressor class (tests/data/lba_authors_linear.json,
written by scripts/make_lba_authors_fixture.py from their released file)."""
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_squared_error

from holovae.evaluate.regression import fit_linear_regressor, fit_methods, fit_random_forest, mean_predictor
from holovae.evaluate.regression_authors import (bootstrap_indices, fit_bagged_forest, fit_linear_authors,
                                                 forest_states)

FIXTURE = Path(__file__).parent / "data" / "lba_authors_linear.json"


def forest_data(n=140, dim=4, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) * np.logspace(-1, 1, dim)
    y = x @ rng.standard_normal(dim) + np.sin(x[:, 0]) + 6.0 + 0.3 * rng.standard_normal(n)
    return x[:80], y[:80], x[80:110], y[80:110], x[110:]


def test_bootstrap_is_the_authors_draw():
    # atom3d_lba_prediction.py: np.random.default_rng(args.seed).choice(np.arange(N), size=N, replace=True)
    idx = bootstrap_indices(50, 7)
    np.testing.assert_array_equal(idx, np.random.default_rng(7).choice(np.arange(50), size=50, replace=True))
    assert len(np.unique(idx)) < 50                        # with replacement: some rows repeat, some are left out
    assert not np.array_equal(idx, bootstrap_indices(50, 8))


def test_bagged_forest_is_the_mean_of_ten_forests_on_one_resample():
    xt, yt, xv, yv, xe = forest_data()
    grid = {"max_features": [1.0, "sqrt"], "min_samples_leaf": [2, 10], "n_estimators": [4, 8]}
    fit = fit_bagged_forest(xt, yt, xv, yv, grid=grid, seed=11)

    rows = np.random.default_rng(11).choice(np.arange(len(xt)), size=len(xt), replace=True)
    states = [int(s) for s in np.random.SeedSequence(11).generate_state(10)]
    assert forest_states(11, 10) == states
    # the grid: every point fitted 5 times on the resample, scored by the mean validation RMSE
    manual = []
    for mf, msl, n in itertools.product(*grid.values()):
        params = {"max_features": mf, "min_samples_leaf": msl, "n_estimators": n}
        rmses = [math.sqrt(mean_squared_error(yv, RandomForestRegressor(random_state=states[r], **params)
                                              .fit(xt[rows], yt[rows]).predict(xv))) for r in range(5)]
        manual.append((params, float(np.mean(rmses))))
    assert [p for p, _ in fit.grid_rmse] == [p for p, _ in manual]
    np.testing.assert_allclose([r for _, r in fit.grid_rmse], [r for _, r in manual], rtol=1e-12)
    best = min(manual, key=lambda pr: pr[1])
    assert fit.params == best[0] and fit.val_rmse == pytest.approx(best[1], rel=1e-12)
    # the prediction: the mean of 10 forests with the chosen point, all on the same resample
    forests = [RandomForestRegressor(random_state=states[k], **best[0]).fit(xt[rows], yt[rows]) for k in range(10)]
    expected = np.mean([f.predict(xe) for f in forests], axis=0)
    np.testing.assert_allclose(fit.predict(xe), expected, rtol=1e-12)
    np.testing.assert_array_equal(fit.bootstrap, rows)
    # ... which is not the paper protocol's single forest on the whole train set
    paper = fit_random_forest(xt, yt, xv, yv, grid=grid, seed=11)
    assert not np.allclose(paper.predict(xe), fit.predict(xe))


def test_linear_authors_equals_the_authors_class():
    f = json.loads(FIXTURE.read_text())
    model = fit_linear_authors(np.array(f["x_train"]), np.array(f["y_train"]), seed=f["seed"], epochs=f["epochs"],
                               n_bags=f["bags"])
    # float32 training on both sides, the same operations: agreement to float32 rounding
    np.testing.assert_allclose(model.predict(np.array(f["x_test"])), f["expected"], rtol=0, atol=2e-5)
    np.testing.assert_allclose([h[-1] for h in model.loss_history], f["final_train_loss"], rtol=1e-6)
    # the fixture exercises the schedule: ReduceLROnPlateau divided the LR in every stage, and each
    # stage restarted at 0.01 (a fresh optimiser on the previous stage's weights)
    assert all(h[0] == 0.01 and min(h) < 0.01 for h in model.lr_history)
    assert len(model.weights) == f["bags"]


def test_linear_authors_uses_raw_features_and_the_paper_linear_does_not():
    # a column rescaled by 1000 changes what Adam on raw features reaches in a fixed budget; the
    # paper protocol standardises the features, so its fit is unchanged (up to float32 rounding)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(60)
    scaled = x * np.array([1000.0, 1.0, 1.0])
    a = fit_linear_authors(x, y, seed=0, epochs=20, n_bags=1).predict(x)
    b = fit_linear_authors(scaled, y, seed=0, epochs=20, n_bags=1).predict(scaled)
    assert np.abs(a - b).max() > 0.1
    p = fit_linear_regressor(x[:40], y[:40], x[40:], y[40:], epochs=20, seed=0).predict(x)
    q = fit_linear_regressor(scaled[:40], y[:40], scaled[40:], y[40:], epochs=20, seed=0).predict(scaled)
    np.testing.assert_allclose(p, q, atol=1e-4)


def test_linear_authors_keeps_final_weights_and_the_paper_linear_the_best():
    # validation targets are the negated train map: the paper protocol keeps its first epochs'
    # weights (best validation), the authors' protocol its last ones, whatever validation says
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 2))
    y = np.concatenate([2 * x[:40, 0], -2 * x[40:, 0]])
    paper = fit_linear_regressor(x[:40], y[:40], x[40:], y[40:], epochs=40, seed=0)
    assert paper.best_epoch <= 3 and abs(paper.weight[0] * paper.y_std / paper.x_std[0]) < 1.0
    authors = fit_linear_authors(x[:40], y[:40], x[40:], y[40:], seed=0, epochs=300, n_bags=1)
    assert authors.weights[0][0] == pytest.approx(2.0, abs=0.2)     # the train map, learnt to the end


def test_fit_methods_by_protocol():
    assert fit_methods("paper") == {"linear": fit_linear_regressor, "random_forest": fit_random_forest,
                                    "mean": mean_predictor}
    authors = fit_methods("authors")
    assert authors["random_forest"] is fit_bagged_forest and authors["linear"] is fit_linear_authors
    assert authors["mean"] is mean_predictor
    with pytest.raises(ValueError, match="protocol"):
        fit_methods("mine")
