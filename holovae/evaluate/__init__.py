"""Evaluation of trained H-(V)AEs: latent-space metrics and equivariance errors."""
from .equivariance import equivariance_error, latent_invariance_error
from .latent import (LinearClassifierResult, cross_validated_accuracies, fit_linear_classifier, kmeans_purity_vmeasure,
                     knn_accuracy, linear_classifier_accuracy, purity)
from .retrieval import retrieval_lists_from_predictions, shrec17_metrics, shrec17_metrics_from_predictions

__all__ = [
    "LinearClassifierResult", "cross_validated_accuracies", "equivariance_error", "fit_linear_classifier", "kmeans_purity_vmeasure",
    "knn_accuracy", "latent_invariance_error", "linear_classifier_accuracy", "purity",
    "retrieval_lists_from_predictions", "shrec17_metrics", "shrec17_metrics_from_predictions",
]
