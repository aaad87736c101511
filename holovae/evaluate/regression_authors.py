"""The authors' released LBA regressors (``lba.protocol: authors``), re-implemented with seeds.

What the released code (gvisani/Holographic-VAE @ 728b67c, ``experiments/ATOM3D_LBA``) does,
and holovae's ``paper`` protocol (:mod:`holovae.evaluate.regression`) does not:

* **one bootstrap resample** of the training set, ``numpy.random.default_rng(seed).choice(N, N,
  replace=True)`` (:func:`bootstrap_indices`), is all every fit sees -- the grid search and the
  final fits alike;
* **random forest**: each grid point is fitted ``grid_repeats`` (5) times on that resample and
  scored by its mean validation RMSE; the chosen point is then fitted ``n_bags`` (10) times on
  the *same* resample and the test prediction is the mean of the 10 forests. The authors'
  forests had no ``random_state``; here forest ``k`` (grid repeat ``k`` alike) gets
  ``forest_states(seed)[k]``, so a run is reproducible;
* **linear regressor**: raw features and targets (no standardisation), one ``nn.Linear``
  trained with Adam (lr 0.01, batches of 32 reshuffled by a seeded generator) and torch's
  ``ReduceLROnPlateau`` with its defaults (÷10 after 10 epochs without a 1e-4 relative gain)
  stepped on the epoch's mean *training* batch loss -- the released script fits without
  validation data -- and the *final* weights kept. The released loop calls ``fit`` ``n_bags``
  times on one model object: each call goes on from the previous weights with a fresh optimiser
  and schedule (250 more epochs), and the test prediction is the mean of the 10 stages'.

The released script cannot in fact run its linear regressors: their hyperparameter search
returns ``None`` and the script then reads ``None["RMSD"]``. The linear protocol here is the
class as that loop would call it. Every fit method has the signature of
:data:`holovae.evaluate.regression.FIT_METHODS` (``x_val``/``y_val`` unused by the linear one).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from .latent import single_thread, to_numpy
from .regression import PAPER_GRID, as_targets, grid_key, grid_points, rmse_by_forest_size

__all__ = ["N_BAGS", "GRID_REPEATS", "bootstrap_indices", "forest_states", "BaggedForest", "fit_bagged_forest",
           "AuthorsLinear", "fit_linear_authors"]

N_BAGS = 10          # the released script's --num_bootstrap_samples default
GRID_REPEATS = 5     # fits per grid point in its select_best_hparams()


def bootstrap_indices(n: int, seed: int) -> np.ndarray:
    """The authors' bootstrap resample of ``n`` training rows: indices ``[n]`` drawn with
    replacement by ``numpy.random.default_rng(seed)`` (their expression, their seed argument)."""
    if n < 1:
        raise ValueError("no training rows to resample")
    return np.random.default_rng(seed).choice(np.arange(n), size=n, replace=True)


def forest_states(seed: int, n: int) -> list[int]:
    """``random_state`` of forests ``0..n-1`` of one seed: ``SeedSequence(seed).generate_state(n)``
    (independent streams; the authors' forests were unseeded)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n)]


# ---------------------------------------------------------------------------- random forest


@dataclass
class BaggedForest:
    """The authors' random forest: ``models`` (``n_bags`` forests with ``params``, all fitted on
    the rows ``bootstrap`` of the training set) whose predictions are averaged.

    ``val_rmse``: the chosen point's mean validation RMSE over the grid repeats; ``grid_rmse``:
    ``[(params, mean val RMSE)]`` of every grid point, in grid order."""

    models: list
    params: dict
    val_rmse: float
    bootstrap: np.ndarray
    grid_rmse: list[tuple[dict, float]] = field(default_factory=list)

    def predict(self, x) -> np.ndarray:
        """``x [N, d]`` -> the mean of the forests' predictions ``[N]``."""
        x = to_numpy(x)
        return np.mean(np.vstack([m.predict(x) for m in self.models]), axis=0)

    @property
    def chosen(self) -> dict:
        return {"params": self.params, "val_rmse": float(self.val_rmse)}


def fit_bagged_forest(x_train, y_train, x_val, y_val, *, grid: dict[str, list] | None = None, seed: int,
                      n_jobs: int | None = None, n_bags: int = N_BAGS,
                      grid_repeats: int = GRID_REPEATS) -> BaggedForest:
    """The authors' random forest (see the module docstring) on ``x [N, d]`` -> ``y [N]``.

    ``grid`` as :func:`~holovae.evaluate.regression.fit_random_forest` (default the paper's,
    which is also the released code's); the ``n_estimators`` values of one grid repeat are
    scored from one forest of the largest size (its first k trees are the k-tree forest with the
    same ``random_state``). Ties between grid points go to the first in grid order, as the
    authors' ``argmin``.
    """
    from sklearn.ensemble import RandomForestRegressor

    if n_bags < 1 or grid_repeats < 1:
        raise ValueError(f"n_bags and grid_repeats must be >= 1, got {n_bags}, {grid_repeats}")
    grid = dict(PAPER_GRID if grid is None else grid)
    grid.setdefault("n_estimators", [100])
    sizes = sorted(set(grid["n_estimators"]))
    others = {k: v for k, v in grid.items() if k != "n_estimators"}
    xt, xv = to_numpy(x_train), to_numpy(x_val)
    yt, yv = as_targets(y_train), as_targets(y_val)
    if len(xv) == 0:
        raise ValueError("the random-forest grid needs a validation set to choose from")
    rows = bootstrap_indices(len(xt), seed)
    xb, yb = xt[rows], yt[rows]
    states = forest_states(seed, max(n_bags, grid_repeats))

    sums: dict[tuple, float] = {}
    for params in grid_points(others):
        for r in range(grid_repeats):
            forest = RandomForestRegressor(n_estimators=sizes[-1], random_state=states[r], n_jobs=n_jobs, **params)
            forest.fit(xb, yb)
            for k, rmse in rmse_by_forest_size(forest, xv, yv, sizes).items():
                key = grid_key(dict(params, n_estimators=k))
                sums[key] = sums.get(key, 0.0) + rmse
    grid_rmse = [(params, sums[grid_key(params)] / grid_repeats) for params in grid_points(grid)]
    best_params, best_rmse = min(grid_rmse, key=lambda pr: pr[1])   # min keeps the first of ties
    models = [RandomForestRegressor(random_state=states[k], n_jobs=n_jobs, **best_params).fit(xb, yb)
              for k in range(n_bags)]
    return BaggedForest(models, best_params, best_rmse, rows, grid_rmse)


# ------------------------------------------------------------------------ linear regression


@dataclass
class AuthorsLinear:
    """The authors' linear regressor after ``len(weights)`` stages of training: per stage the
    final ``weights[k] [d]`` and ``biases[k]`` (float32, on raw features and targets); the
    prediction is the mean over stages. ``lr_history[k]``: the LR of each epoch of stage k;
    ``loss_history[k]``: its mean training batch loss (what the schedule watched)."""

    weights: list[np.ndarray]
    biases: list[float]
    bootstrap: np.ndarray
    lr_history: list[list[float]] = field(default_factory=list)
    loss_history: list[list[float]] = field(default_factory=list)

    def predict(self, x) -> np.ndarray:
        """``x [N, d]`` -> ``[N]``: each stage's ``x @ w + b`` in float32 (as the authors' torch
        forward), averaged over the stages in float64."""
        x = torch.as_tensor(to_numpy(x), dtype=torch.float32)
        preds = [(x @ torch.from_numpy(w) + b).numpy().astype(np.float64) for w, b in zip(self.weights, self.biases)]
        return np.mean(np.vstack(preds), axis=0)

    @property
    def chosen(self) -> dict:
        return {"stages": len(self.weights), "final_lr": float(self.lr_history[-1][-1]) if self.lr_history else None,
                "final_train_mse": float(self.loss_history[-1][-1]) if self.loss_history else None}


def fit_linear_authors(x_train, y_train, x_val=None, y_val=None, *, seed: int, epochs: int = 250, lr: float = 0.01,
                       batch_size: int = 32, n_bags: int = N_BAGS) -> AuthorsLinear:
    """The authors' linear regressor (see the module docstring) on the bootstrap resample of
    ``x [N, d]`` -> ``y [N]``; ``x_val``, ``y_val`` are accepted and unused, as in the released
    call. ``seed`` draws the resample (:func:`bootstrap_indices`), the initial weights (PyTorch's
    default bound 1/sqrt(d), from ``torch.Generator().manual_seed(seed)``; the authors' came from
    the unseeded global RNG) and the batch order (a second generator with the same seed feeding
    the ``DataLoader``, as the authors' fixed ``seed=100000`` one did)."""
    with single_thread():
        return _fit_linear_authors(x_train, y_train, seed, epochs, lr, batch_size, n_bags)


def _fit_linear_authors(x_train, y_train, seed, epochs, lr, batch_size, n_bags) -> AuthorsLinear:
    """The body of :func:`fit_linear_authors` (same arguments)."""
    from torch.utils.data import DataLoader, TensorDataset

    xt, yt = to_numpy(x_train).astype(np.float64), as_targets(y_train)
    if len(xt) != len(yt):
        raise ValueError("features and targets differ in length")
    if n_bags < 1:
        raise ValueError(f"n_bags must be >= 1, got {n_bags}")
    rows = bootstrap_indices(len(xt), seed)
    data = TensorDataset(torch.from_numpy(np.ascontiguousarray(xt[rows])), torch.from_numpy(yt[rows].copy()))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=False,
                        generator=torch.Generator().manual_seed(seed))
    layer = torch.nn.Linear(xt.shape[1], 1)
    init = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bound = 1 / max(1, xt.shape[1]) ** 0.5
        layer.weight.uniform_(-bound, bound, generator=init)
        layer.bias.uniform_(-bound, bound, generator=init)
    mse = torch.nn.MSELoss()
    weights, biases, lrs, losses = [], [], [], []
    for _ in range(n_bags):
        # a fresh optimiser and schedule per stage, the weights carried over (the released loop
        # re-fits one model object)
        opt = torch.optim.Adam(layer.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        stage_lr, stage_loss = [], []
        for _ in range(epochs):
            stage_lr.append(opt.param_groups[0]["lr"])
            batch_losses = []
            for xb, yb in loader:
                opt.zero_grad()
                loss = mse(layer(xb.float()), yb.float().view(-1, 1))
                batch_losses.append(loss.item())
                loss.backward()
                opt.step()
            stage_loss.append(float(np.mean(batch_losses)))
            sched.step(stage_loss[-1])
        state = copy.deepcopy(layer.state_dict())
        weights.append(state["weight"][0].numpy())
        biases.append(float(state["bias"][0]))
        lrs.append(stage_lr)
        losses.append(stage_loss)
    return AuthorsLinear(weights, biases, rows, lrs, losses)

