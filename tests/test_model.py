"""Whole-model properties: parameter counts of the paper, invariance, equivariance, KL."""
import math

import pytest
import torch
from scipy.spatial.distance import cosine as scipy_cosine

from holovae.losses import cosine_loss, kl_divergence, kl_weight, learning_rate, weighted_cosine_loss
from holovae.models import HVAE, HVAEConfig
from holovae.models.frame import frame_to_matrix
from holovae.so3 import irreps_from_channels, random_rotation, rotate_flat

MNIST = str(irreps_from_channels([1] * 11))
PROTEIN_L6 = str(irreps_from_channels([44, 40, 40, 36, 36, 32, 32]))


def mnist_config(**kw):
    return HVAEConfig(MNIST, kw.pop("latent_dim", 16), [16] * 6, [10, 10, 8, 4, 2, 1], **kw)


@pytest.mark.parametrize("config,paper,tolerance", [
    (mnist_config(), 227_000, 0.01),
    # z = 120: the paper gives 453k but no channel list; ours (config/paper.yaml) has 454,899
    (HVAEConfig(MNIST, 120, [16, 16, 16, 36, 64, 120], [10, 10, 8, 4, 2, 1]), 453_000, 0.01),
    # Table S8's Full-TP rows for MNIST: 229,045 for the first; the second has 218,951, 3.5%
    # under the paper's 227k (a difference we could not attribute), hence its wider tolerance
    (HVAEConfig(MNIST, 16, [7, 6, 6, 6, 16], [10, 8, 4, 2, 1], tp="full"), 229_000, 0.01),
    (HVAEConfig(MNIST, 16, [5, 5, 5, 5, 7, 16], [10, 10, 8, 4, 2, 1], tp="full"), 227_000, 0.04),
    (HVAEConfig(PROTEIN_L6, 64, [50, 50, 50, 64, 64, 64], [6, 6, 6, 4, 2, 1], initial_channels=44), 1.6e6, 0.01),
    (HVAEConfig(PROTEIN_L6, 128, [60, 60, 60, 90, 128, 128], [6, 6, 6, 4, 2, 1], initial_channels=44), 2.6e6, 0.01),
])
def test_parameter_counts_match_the_paper(config, paper, tolerance):
    n = HVAE(config).n_parameters()
    assert abs(n - paper) / paper < tolerance, n


def _equivariance_errors(model, x, irreps, R):
    with torch.no_grad():
        o1, o2 = model(x), model(rotate_flat(x, irreps, R))
    z_err = (o1["z"] - o2["z"]).norm() / o1["z"].norm()
    rec_err = (rotate_flat(o1["x_rec"], irreps, R) - o2["x_rec"]).norm() / o2["x_rec"].norm()
    frame_err = (R.to(x.dtype) @ frame_to_matrix(o1["frame"]) - frame_to_matrix(o2["frame"])).abs().max()
    return z_err.item(), rec_err.item(), frame_err.item()


@pytest.mark.parametrize("decoder", ["equivariant", "mlp"])
@pytest.mark.parametrize("vae", [False, True])
def test_random_model_is_equivariant_float32(decoder, vae):
    model = HVAE(mnist_config(vae=vae, decoder=decoder)).eval()
    x = torch.randn(16, 121)
    for seed in range(3):
        R = random_rotation(generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
        z_err, rec_err, frame_err = _equivariance_errors(model, x, MNIST, R)
        assert z_err < 1e-4 and rec_err < 1e-4, (z_err, rec_err)
        assert frame_err < 1e-3  # Gram-Schmidt amplifies float32 round-off when v1, v2 are near parallel


def test_trained_model_is_equivariant_and_report_float64(capsys):
    model = HVAE(HVAEConfig(PROTEIN_L6, 8, [6, 6, 6, 6], [4, 4, 2, 1], initial_channels=6, vae=True))
    x = torch.randn(64, 1708)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(5):
        out = model(x)
        loss = ((out["x_rec"] - x) ** 2).mean() + 0.1 * kl_divergence(out["z_mean"], out["z_log_var"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    R = random_rotation(generator=torch.Generator().manual_seed(7), dtype=torch.float32)
    z_err, rec_err, _ = _equivariance_errors(model, x[:16], PROTEIN_L6, R)
    assert z_err < 1e-4 and rec_err < 1e-4, (z_err, rec_err)
    errs64 = _equivariance_errors(model.double(), x[:16].double(), PROTEIN_L6, R.double())
    with capsys.disabled():
        print(f"\n[float64 equivariance after training] z {errs64[0]:.1e}, reconstruction {errs64[1]:.1e}, "
              f"frame {errs64[2]:.1e} (bounded by e3nn's CG constants, ~1e-7)")
    assert errs64[0] < 1e-6 and errs64[1] < 1e-6


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(10, 5, dtype=torch.float64), torch.randn(10, 5, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1).mean() / 5
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)


def test_cosine_losses_against_independent_computations():
    x, y = torch.randn(4, 121, dtype=torch.float64), torch.randn(4, 121, dtype=torch.float64)
    plain = cosine_loss(x, y)
    for b in range(4):
        assert math.isclose(float(plain[b]), scipy_cosine(x[b].numpy(), y[b].numpy()), rel_tol=1e-12)
    # weighted: degree l (block [l^2, (l+1)^2)) weighted by sqrt(2l+1), computed by hand
    w = torch.cat([torch.full((2 * l + 1,), math.sqrt(2 * l + 1), dtype=torch.float64) for l in range(11)])
    for b in range(4):
        num = float((w * x[b] * y[b]).sum())
        den = math.sqrt(float((w * x[b] ** 2).sum()) * float((w * y[b] ** 2).sum()))
        assert math.isclose(float(weighted_cosine_loss(x, y, MNIST)[b]), 1 - num / den, rel_tol=1e-12)


def test_schedules():
    import numpy as np
    lrs = [learning_rate(e, 1e-3, 25) for e in range(30)]
    np.testing.assert_allclose(lrs[:25], np.logspace(-3, -4, 25))
    assert lrs[25:] == [1e-4] * 5
    kl = [kl_weight(e, 0.2, 25, 35) for e in range(70)]
    assert kl[:25] == [0.0] * 25 and math.isclose(kl[25], 0.2 / 35) and kl[59] == 0.2 and kl[69] == 0.2


def test_bad_inputs_give_clear_errors():
    model = HVAE(mnist_config()).eval()
    x = torch.randn(4, 121)
    x[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(ValueError, match=r"\[batch, 121\]"):
        model(torch.randn(4, 120))
    with pytest.raises(ValueError, match="unknown model config keys"):
        HVAEConfig.from_dict({"irreps_in": MNIST, "latent_dim": 2, "channels": [2], "degrees": [1], "chanels": 3})
    with pytest.raises(ValueError, match="initial_channels"):
        HVAEConfig(PROTEIN_L6, 8, [4, 4], [2, 1])
