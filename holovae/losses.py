"""Training losses and reconstruction metrics of the H-(V)AE."""
from __future__ import annotations

import math

import torch
from e3nn import o3


def kl_divergence(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per latent dimension, averaged over the batch.

    ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar)) / z`` (the authors' normalisation).
    """
    kl = -0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(dim=1)
    return kl.mean() / z_mean.shape[1]


def scaled_mse(x_rec: torch.Tensor, x: torch.Tensor, lambda_x: float) -> torch.Tensor:
    """``lambda_x * mean((x_rec - x)^2)`` over every coefficient of the batch."""
    return lambda_x * torch.mean((x_rec - x) ** 2)


def cosine_loss(x_rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Plain cosine loss ``1 - <x_rec, x> / (|x_rec| |x|)`` per sample: ``[B, dim]`` -> ``[B]``."""
    num = (x_rec * x).sum(dim=1)
    return 1 - num / (x_rec.norm(dim=1) * x.norm(dim=1)).clamp_min(1e-12)


def degree_weights(irreps) -> torch.Tensor:
    """``sqrt(2l+1)`` for every coefficient of a flat tensor: ``[dim]``."""
    irreps = o3.Irreps(irreps)
    return torch.cat([torch.full((mul * ir.dim,), math.sqrt(2 * ir.l + 1), dtype=torch.float64)
                      for mul, ir in irreps])


def weighted_cosine_loss(x_rec: torch.Tensor, x: torch.Tensor, irreps) -> torch.Tensor:
    """The authors' cosine loss, which weights degree l by sqrt(2l+1) (``[B, dim]`` -> ``[B]``):

    ``1 - sum_l w_l <x_l, y_l> / sqrt(sum_l w_l |x_l|^2 * sum_l w_l |y_l|^2)``.
    """
    w = degree_weights(irreps).to(x)
    num = (w * x_rec * x).sum(dim=1)
    den = torch.sqrt((w * x_rec * x_rec).sum(dim=1) * (w * x * x).sum(dim=1)).clamp_min(1e-12)
    return 1 - num / den


def kl_weight(epoch: int, lambda_kl: float, no_kl_epochs: int, warmup_kl_epochs: int) -> float:
    """KL warm-up: 0 for ``no_kl_epochs``, linear up to ``lambda_kl`` over ``warmup_kl_epochs``, then constant.

    ``epoch`` counts from 0; during the ramp epoch ``no_kl + k`` gets ``lambda_kl * (k+1)/warmup``.
    """
    if epoch < no_kl_epochs:
        return 0.0
    if warmup_kl_epochs <= 0:
        return lambda_kl
    return lambda_kl * min(1.0, (epoch - no_kl_epochs + 1) / warmup_kl_epochs)


def learning_rate(epoch: int, lr: float, no_kl_epochs: int) -> float:
    """Log-spaced from ``lr`` to ``lr/10`` over the first ``no_kl_epochs`` epochs, then ``lr/10``."""
    if no_kl_epochs <= 1:
        return lr / 10 if epoch >= no_kl_epochs else lr
    if epoch >= no_kl_epochs:
        return lr / 10
    return lr * 10 ** (-epoch / (no_kl_epochs - 1))
