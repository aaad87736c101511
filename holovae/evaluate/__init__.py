"""Evaluation of trained H-(V)AEs: latent-space metrics and equivariance errors.

The names below load their module on first use, so that light modules of this package
(:mod:`holovae.evaluate.lba`'s constants, read when the CLI is built) do not import torch.
"""
import importlib

_MODULE_OF = {
    "equivariance_error": "equivariance", "latent_invariance_error": "equivariance",
    "LinearClassifierResult": "latent", "cross_validated_accuracies": "latent", "fit_linear_classifier": "latent",
    "kmeans_purity_vmeasure": "latent", "knn_accuracy": "latent", "linear_classifier_accuracy": "latent",
    "purity": "latent",
    "retrieval_lists_from_predictions": "retrieval", "shrec17_metrics": "retrieval",
    "shrec17_metrics_from_predictions": "retrieval",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value
