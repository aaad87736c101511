"""Training losses and reconstruction metrics of the H-(V)AE."""
from __future__ import annotations

import math

import torch
from holovae._e3nn import o3


def kl_divergence(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per latent dimension, averaged over the batch.

    ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar)) / z`` (the authors' normalisation).
    """
    kl = -0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(dim=1)
    return kl.mean() / z_mean.shape[1]


def scaled_mse(x_rec: torch.Tensor, x: torch.Tensor, lambda_x: float, scale=1.0) -> torch.Tensor:
    """``lambda_x * mean(((x_rec - x) / scale)^2)`` over every coefficient of the batch.

    ``scale``: the data's normalising constant (``HVAE.input_scale``). The authors compute the
    MSE on data divided by it, so that ``lambda_x`` and the KL weight mean the same thing on
    data of any magnitude (multiplying the data by 10 leaves the loss unchanged).
    """
    if isinstance(scale, torch.Tensor):
        scale = scale.to(x_rec.dtype)
    return lambda_x * torch.mean(((x_rec - x) / scale) ** 2)


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
    """KL warm-up as the authors wrote it: 0 for ``no_kl_epochs``, then
    ``linspace(0, lambda_kl, warmup_kl_epochs)`` (the ramp starts at 0 and reaches ``lambda_kl``
    on its last epoch), then ``lambda_kl``. ``epoch`` counts from 0."""
    if epoch < no_kl_epochs:
        return 0.0
    k = epoch - no_kl_epochs
    if k >= warmup_kl_epochs:
        return lambda_kl
    if warmup_kl_epochs == 1:   # numpy's linspace(0, b, 1) is [0]
        return 0.0
    return lambda_kl * k / (warmup_kl_epochs - 1)


LR_SCHEDULES = ("log", "constant")


def learning_rate(epoch: int, lr: float, lr_end: float, decay_epochs: int, schedule: str = "log") -> float:
    """Learning rate of ``epoch`` (from 0).

    ``"log"``: log-spaced from ``lr`` (epoch 0) to ``lr_end`` (epoch ``decay_epochs - 1``), then
    held at ``lr_end`` -- the authors' ``log_decrease_until_end_of_warmup`` is
    ``lr_end = lr/10, decay_epochs = no_kl_epochs``, their ``log_decrease_until_end_by_2_OM``
    ``lr_end = lr/100, decay_epochs = epochs``. ``"constant"``: ``lr`` throughout.
    """
    if schedule == "constant":
        return lr
    if schedule != "log":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; known: {list(LR_SCHEDULES)}")
    if epoch >= decay_epochs:        # also every epoch when decay_epochs = 0, as numpy's empty logspace
        return lr_end
    if decay_epochs == 1:
        return lr
    return lr * (lr_end / lr) ** (epoch / (decay_epochs - 1))
