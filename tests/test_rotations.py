"""Wigner-D from sampled harmonics: exact for e3nn's spherical harmonics, a representation, and
equal to e3nn's own D_from_matrix up to the ~1e-6 by which e3nn's harmonics and D disagree."""
import pytest
import torch
from e3nn import o3

from holovae.so3 import irreps_D, random_rotation, real_spherical_harmonics, rotate_flat, wigner_D
from holovae.so3.rotations import wigner_D_all

LMAX = 10
IRREPS = "+".join(f"1x{l}e" for l in range(LMAX + 1))


def test_harmonics_rotate_with_D():
    x = torch.randn(64, 3, dtype=torch.float64)
    R = random_rotation(5, generator=torch.Generator().manual_seed(1))
    Y = real_spherical_harmonics(LMAX, x)
    for k in range(5):
        expected = real_spherical_harmonics(LMAX, x @ R[k].T)
        assert torch.allclose(Y @ irreps_D(IRREPS, R[k]).T, expected, atol=1e-12, rtol=0)


def test_representation_and_orthogonality():
    g = torch.Generator().manual_seed(2)
    R1, R2 = random_rotation(8, generator=g), random_rotation(8, generator=g)
    for l, (D1, D2, D12) in enumerate(zip(wigner_D_all(LMAX, R1), wigner_D_all(LMAX, R2), wigner_D_all(LMAX, R1 @ R2))):
        eye = torch.eye(2 * l + 1, dtype=torch.float64).expand_as(D1)
        assert torch.allclose(D1 @ D2, D12, atol=1e-12), l
        assert torch.allclose(D1 @ D1.transpose(-1, -2), eye, atol=1e-12), l
        assert torch.allclose(wigner_D(l, torch.eye(3, dtype=torch.float64)), eye[0], atol=1e-12), l


def test_matches_e3nn_D_from_matrix():
    R = random_rotation(16, generator=torch.Generator().manual_seed(3))
    ours, theirs = irreps_D(IRREPS, R), o3.Irreps(IRREPS).D_from_matrix(R)
    assert (ours - theirs).abs().max() < 5e-5            # e3nn's harmonics vs its D: ~1e-6 per entry
    assert torch.allclose(irreps_D("2x0e+1x1e", R[0]), o3.Irreps("2x0e+1x1e").D_from_matrix(R[0]), atol=1e-12)


def test_rotate_flat_is_differentiable_and_matches_dense_D():
    irreps = "3x0e+2x1e+2x2e"
    x = torch.randn(4, o3.Irreps(irreps).dim, dtype=torch.float64)
    R = random_rotation(4, generator=torch.Generator().manual_seed(4)).requires_grad_()
    y = rotate_flat(x, irreps, R)
    assert torch.allclose(y, torch.einsum("nij,nj->ni", irreps_D(irreps, R), x), atol=1e-12)
    y.sum().backward()
    assert R.grad is not None and torch.isfinite(R.grad).all()


@pytest.mark.slow   # a fresh interpreter and one torch.compile: ~30 s
def test_holovae_imports_e3nn_without_dynamo_and_wigner_d_still_works():
    """holovae imports e3nn.o3 with a lazy torch.compiler.disable (holovae/_e3nn.py): no
    torch._dynamo at start-up nor when e3nn's decorated function runs eagerly (Wigner-D and CG
    coefficients unchanged); under torch.compile the function still compiles (graph break)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, torch\n"
            "import holovae.data.hdf5, holovae.models, holovae.transforms.zernike, holovae.cli\n"
            "print('before', 'torch._dynamo' in sys.modules)\n"
            "from holovae._e3nn import o3\n"
            "from holovae.models import HVAE, HVAEConfig\n"
            "HVAE(HVAEConfig(irreps_in='2x0e+2x1e+2x2e', latent_dim=2, channels=[2], degrees=[1]))\n"
            "a, b, c = (torch.tensor(v, dtype=torch.float64) for v in (0.3, 1.1, -0.7))\n"
            "D = o3.wigner_D(3, a, b, c)\n"
            "print('after', 'torch._dynamo' in sys.modules)\n"
            "R = o3.angles_to_matrix(a, b, c)\n"
            "print('orthogonal', float((D @ D.T - torch.eye(7, dtype=D.dtype)).abs().max()))\n"
            "x = torch.randn(5, 3, dtype=torch.float64)\n"
            "Y = o3.spherical_harmonics(3, x, normalize=True)\n"
            "print('equivariant', float((o3.spherical_harmonics(3, x @ R.T, normalize=True) - Y @ D.T).abs().max()))\n"
            "f = torch.compile(lambda t: o3.wigner_D(2, t, 2 * t, 3 * t).sum())\n"
            "t = torch.tensor(0.3)\n"
            "print('compiled', abs(float(f(t)) - float(o3.wigner_D(2, t, 2 * t, 3 * t).sum())))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         timeout=600).stdout.split("\n")
    vals = dict(line.split(" ", 1) for line in out if line)
    assert vals["before"] == "False" and vals["after"] == "False"
    # e3nn's D and its harmonics agree to ~1e-6 (see the module docstring)
    assert float(vals["orthogonal"]) < 1e-12 and float(vals["equivariant"]) < 1e-5
    assert float(vals["compiled"]) < 1e-5
