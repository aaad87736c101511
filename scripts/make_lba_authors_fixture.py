"""Write tests/data/lba_authors_linear.json: predictions of the authors' own LinearRegressor
class (gvisani/Holographic-VAE @ 728b67c, experiments/ATOM3D_LBA/src/training/predictors.py),
driven as their atom3d_lba_prediction.py drives a regressor, for
tests/test_regression_authors.py to compare holovae's ``fit_linear_authors`` with.

    PYTHONPATH=. python scripts/make_lba_authors_fixture.py --authors /work/authors

What is fixed so that the two can agree exactly: the bootstrap resample (the authors'
expression with ``--seed``), the generator seed of their batch shuffling (their constructor's
``seed``; their script leaves the default 100000, holovae passes its seed) and the initial
weights (theirs come from torch's unseeded global RNG: here they are overwritten by holovae's
seeded draw, re-derived below from PyTorch's default bound 1/sqrt(d)). Everything else -- the
DataLoader, Adam, ReduceLROnPlateau stepped on the training loss, the final weights, the
repeated ``fit`` calls on one object, the mean of the stages' predictions -- is their code, run
as it is (imported from its file, not copied).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "lba_authors_linear.json"
PREDICTORS = "experiments/ATOM3D_LBA/src/training/predictors.py"


def dataset(seed: int = 0, n: int = 48, n_test: int = 12, dim: int = 5):
    """Features of mixed scale (0.1 .. 10, as raw pocket sums), targets a noisy linear map of them
    (offset 1, not a pK of ~6: so that 150 epochs converge and the LR schedule acts)."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-1, 1, dim)
    x = rng.standard_normal((n + n_test, dim)) * scales
    y = x @ (rng.standard_normal(dim) / scales) + 1.0 + 0.3 * rng.standard_normal(n + n_test)
    return x[:n], y[:n], x[n:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", default="/work/authors", help="checkout of gvisani/Holographic-VAE")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--bags", type=int, default=3)
    args = ap.parse_args()

    spec = importlib.util.spec_from_file_location("authors_predictors", Path(args.authors) / PREDICTORS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    torch.set_num_threads(1)
    x, y, x_test = dataset()
    boot = np.random.default_rng(args.seed).choice(np.arange(x.shape[0]), size=x.shape[0], replace=True)
    model = module.LinearRegressor(x.shape[1], n_epochs=args.epochs, verbose=False, seed=args.seed)
    init = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        bound = 1 / x.shape[1] ** 0.5
        model.linear.weight.uniform_(-bound, bound, generator=init)
        model.linear.bias.uniform_(-bound, bound, generator=init)
    stages, final_losses = [], []
    for _ in range(args.bags):
        model.fit(x[boot], y[boot])
        stages.append(model.predict(x_test))
        final_losses.append(model.loss_trace_per_epoch[-1])
    expected = np.mean(np.vstack(stages), axis=0)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "provenance": "scripts/make_lba_authors_fixture.py: the authors' LinearRegressor (gvisani/Holographic-VAE "
                      f"@ 728b67c, {PREDICTORS}), torch {torch.__version__}, fitted {args.bags} times on one object "
                      "as their atom3d_lba_prediction.py loop does; initial weights overwritten by holovae's "
                      "seeded draw",
        "seed": args.seed, "epochs": args.epochs, "bags": args.bags,
        "x_train": x.tolist(), "y_train": y.tolist(), "x_test": x_test.tolist(),
        "stage_predictions": np.asarray(stages, dtype=np.float64).tolist(),
        "final_train_loss": final_losses, "expected": expected.astype(np.float64).tolist(),
    }, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
