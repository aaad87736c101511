"""Metrics of the invariant latent space z (the paper's appendix; docs/fidelity.md#evaluation):
K-means purity and V-measure, a KNN classifier and a linear classifier trained with the paper's
schedule."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np
import torch


def to_numpy(a) -> np.ndarray:
    """``a`` (a tensor, detached and moved to the CPU, or anything array-like) as a numpy array."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def purity(labels, clusters) -> float:
    """Sum over clusters of the count of the cluster's majority label, divided by N.

    ``labels [N]``, ``clusters [N]`` (any hashable values)."""
    from sklearn.metrics.cluster import contingency_matrix

    c = contingency_matrix(to_numpy(labels), to_numpy(clusters))   # [n_labels, n_clusters]
    return float(c.max(axis=0).sum() / c.sum())


def kmeans_purity_vmeasure(z, labels, n_clusters: int = 10, seed: int = 0, n_init: int = 10) -> tuple[float, float]:
    """K-means on ``z [N, d]`` -> ``(purity, V-measure)`` against ``labels [N]``.

    ``n_init`` is set explicitly because sklearn's default ("auto") changed across versions."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    z, labels = to_numpy(z).astype(np.float64), to_numpy(labels)
    if len(z) < n_clusters:
        raise ValueError(f"K-means with {n_clusters} clusters needs at least {n_clusters} samples, got {len(z)}")
    clusters = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(z)
    return purity(labels, clusters), float(v_measure_score(labels, clusters))


def knn_accuracy(z_train, y_train, z_test, y_test) -> float:
    """Test accuracy of scikit-learn's ``KNeighborsClassifier`` with its defaults (as the paper)."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier().fit(to_numpy(z_train), to_numpy(y_train))
    return float(clf.score(to_numpy(z_test), to_numpy(y_test)))


@dataclass
class LinearClassifierResult:
    """``test_accuracy`` with the weights of the best validation epoch (1-based ``best_epoch``);
    ``lr_history`` and ``val_history`` hold one entry per epoch run; ``test_logits [N_test,
    n_classes]`` are that classifier's outputs on the test set, columns in the order of
    ``classes`` (the sorted labels)."""

    test_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    lr_history: list[float] = field(default_factory=list)
    val_history: list[float] = field(default_factory=list)
    test_logits: np.ndarray | None = None
    classes: np.ndarray | None = None

    @property
    def final_lr(self) -> float:
        return self.lr_history[-1]


@contextlib.contextmanager
def single_thread():
    """Run single-threaded, restoring the thread count after: the classifier's matrices are tiny
    ([100, z] x [z, classes]), so intra-op threads only add synchronisation cost, which becomes
    severe (milliseconds per step) when other processes compete for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_linear_classifier(z_train, y_train, z_val, y_val, z_test, y_test, epochs: int = 250,
                          lr: float = 0.01, batch_size: int = 100, patience: int = 10, seed: int = 0,
                          early_stop: bool = True, standardize: bool = False) -> LinearClassifierResult:
    """One linear layer on ``z [N, d]``, cross-entropy, Adam. ``standardize``: first scale every
    feature by the training set's mean / std (the authors' classifiers see z as it is: off by
    default).

    Schedule (the paper's): the LR is divided by 10 whenever ``patience`` epochs pass without a
    gain in validation accuracy. With ``early_stop`` training ends at the point where a *second*
    division would happen (the LR was already reduced once and ``patience`` more epochs brought no
    gain): a classifier that stopped improving at lr/10 does not recover at lr/100, and this
    saves most of the 250 epochs. ``early_stop=False`` runs all ``epochs``.
    Labels may be any values; classes are the union of the three splits' labels.
    """
    with single_thread():
        return _fit(z_train, y_train, z_val, y_val, z_test, y_test, epochs, lr, batch_size, patience, seed, early_stop,
                    standardize)


def _fit(z_train, y_train, z_val, y_val, z_test, y_test, epochs, lr, batch_size, patience, seed, early_stop,
         standardize):
    """The body of :func:`fit_linear_classifier` (same arguments, positional)."""
    gen = torch.Generator().manual_seed(seed)
    ys = [to_numpy(y) for y in (y_train, y_val, y_test)]
    classes = np.unique(np.concatenate(ys))
    yt, yv, ye = (torch.from_numpy(np.searchsorted(classes, y)).long() for y in ys)
    zt, zv, ze = (torch.as_tensor(to_numpy(z), dtype=torch.float32) for z in (z_train, z_val, z_test))
    if standardize:
        mean, std = zt.mean(0), zt.std(0)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))   # constant features: leave unscaled
        zt, zv, ze = ((z - mean) / std for z in (zt, zv, ze))

    layer = torch.nn.Linear(zt.shape[1], len(classes))
    with torch.no_grad():   # seeded init independent of the global RNG (PyTorch's default bound)
        bound = 1 / max(1, zt.shape[1]) ** 0.5
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.uniform_(-bound, bound, generator=gen)
    opt = torch.optim.Adam(layer.parameters(), lr=lr)

    def accuracy(z, y) -> float:
        with torch.no_grad():
            return float((layer(z).argmax(1) == y).float().mean()) if len(y) else float("nan")

    best_val, best_loss, best_epoch, best_state = -1.0, float("inf"), 0, copy.deepcopy(layer.state_dict())
    since_gain, reduced = 0, False
    lrs, vals = [], []
    for epoch in range(epochs):
        cur_lr = opt.param_groups[0]["lr"]
        order = torch.randperm(len(zt), generator=gen)
        for s in range(0, len(zt), batch_size):   # plain tensor slicing: no DataLoader overhead
            idx = order[s:s + batch_size]
            loss = torch.nn.functional.cross_entropy(layer(zt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val = accuracy(zv, yv)
        with torch.no_grad():
            val_loss = float(torch.nn.functional.cross_entropy(layer(zv), yv)) if len(yv) else 0.0
        lrs.append(cur_lr)
        vals.append(val)
        # a gain: higher validation accuracy, or the same with a lower loss. Accuracy alone is
        # flat for many epochs on small sets (a few steps per epoch), and every 10 flat epochs
        # would divide the LR again until training froze before it started.
        if (val, -val_loss) > (best_val, -best_loss):
            best_val, best_loss, best_epoch, since_gain = val, val_loss, epoch + 1, 0
            best_state = copy.deepcopy(layer.state_dict())
            continue
        since_gain += 1
        if since_gain >= patience:
            if reduced and early_stop:
                break
            for g in opt.param_groups:
                g["lr"] /= 10
            reduced, since_gain = True, 0
    layer.load_state_dict(best_state)
    with torch.no_grad():
        logits = layer(ze).numpy()
    return LinearClassifierResult(accuracy(ze, ye), best_val, best_epoch, len(lrs), lrs, vals, logits, classes)


def linear_classifier_accuracy(z_train, y_train, z_val, y_val, z_test, y_test, **kwargs) -> float:
    """Test accuracy of :func:`fit_linear_classifier` (weights of the best validation epoch)."""
    return fit_linear_classifier(z_train, y_train, z_val, y_val, z_test, y_test, **kwargs).test_accuracy


def cross_validated_accuracies(z, y, folds: int = 5, seed: int = 0, val_fraction: float = 0.1,
                               early_stop: bool = False, **lc_kwargs) -> dict:
    """Linear-classifier and KNN accuracy by stratified ``folds``-fold cross-validation on one
    set ``z [N, d]``, ``y [N]`` (the amino-acid protocol: classifiers fitted on the test
    embeddings, each fold held out once).

    In each fold the linear classifier holds out a stratified ``val_fraction`` of the training
    folds for its LR schedule. Returns ``lc_acc`` / ``knn_acc`` (mean over folds) and the
    per-fold lists ``lc_acc_folds`` / ``knn_acc_folds``.
    """
    from sklearn.model_selection import StratifiedKFold, train_test_split

    z, y = to_numpy(z), to_numpy(y)
    counts = np.bincount(np.unique(y, return_inverse=True)[1].reshape(-1))
    if counts.min() < folds:   # StratifiedKFold would warn and give folds without some class
        keep = np.isin(y, np.unique(y)[counts >= folds])
        z, y = z[keep], y[keep]
    lc, knn = [], []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(splitter.split(z, y)):
        # stratified when the validation part can hold every class (tiny sets: plain random)
        stratify = y[tr] if int(val_fraction * len(tr)) >= len(np.unique(y)) else None
        fit_idx, val_idx = train_test_split(tr, test_size=val_fraction, random_state=seed + k, stratify=stratify)
        res = fit_linear_classifier(z[fit_idx], y[fit_idx], z[val_idx], y[val_idx], z[te], y[te],
                                    seed=seed + k, early_stop=early_stop, **lc_kwargs)
        lc.append(res.test_accuracy)
        knn.append(knn_accuracy(z[tr], y[tr], z[te], y[te]))
    return {"lc_acc": float(np.mean(lc)), "knn_acc": float(np.mean(knn)), "lc_acc_folds": lc, "knn_acc_folds": knn,
            "cv_samples": int(len(y))}
