"""Figures of the MNIST section: the sphere renderer and the figure functions / CLI."""
import math
import sys

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from holovae.data.mnist import load_embedded_mnist, mnist_coefficients, project_points  # noqa: E402
from holovae.models import HVAE, HVAEConfig  # noqa: E402
from holovae.report import figures  # noqa: E402
from holovae.transforms.grid import dh_xyz  # noqa: E402
from holovae.transforms.spherical import inverse_spherical_fourier_transform  # noqa: E402

IRREPS = "+".join(f"1x{l}e" for l in range(11))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny(vae: bool) -> HVAE:
    # A one-step encoder and an MLP decoder: building CG tables up to degree 10 for a deeper
    # equivariant decoder costs ~15 s (a [10, 1] equivariant model cannot even be built: its
    # decoder would have to go from degree 1 to 10 in one CG step).
    torch.manual_seed(1)
    cfg = HVAEConfig(irreps_in=IRREPS, latent_dim=4, channels=[4, 4], degrees=[2, 1], vae=vae,
                     decoder="mlp", mlp_hidden=[16])
    return HVAE(cfg).eval()


@pytest.fixture(scope="module")
def vae():
    return _tiny(True)


@pytest.fixture(scope="module")
def digits():
    """Two test digits per class: images ``[20, 28, 28]``, coefficients ``[20, 121]``, labels ``[20]``."""
    _, _, images, labels = load_embedded_mnist()
    idx = np.concatenate([np.flatnonzero(labels == c)[:2] for c in range(10)])
    return images[idx], mnist_coefficients(images[idx], bw=30, lmax=10), labels[idx]


def _unit(xyz):
    return xyz / xyz.norm(dim=-1, keepdim=True)


# ------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("view", figures.VIEWS)
def test_renderer_reproduces_single_harmonics(view):
    """One coefficient set to 1 renders as that harmonic's analytic formula ('integral' SH)."""
    xyz, mask = figures.view_points(view, 24)
    x, y, z = xyz[mask].unbind(-1)
    cases = {
        0: torch.full_like(x, 1 / math.sqrt(4 * math.pi)),                 # l = 0
        1: math.sqrt(3 / (4 * math.pi)) * x,                                # l = 1 (e3nn order x, y, z)
        3: math.sqrt(3 / (4 * math.pi)) * z,
        4: math.sqrt(15 / (4 * math.pi)) * x * z,                           # l = 2, first component
        6: math.sqrt(5 / (16 * math.pi)) * (2 * y ** 2 - x ** 2 - z ** 2),  # l = 2, e3nn's polar axis y
    }
    coeffs = torch.zeros(len(cases), 121, dtype=torch.float64)
    for row, k in enumerate(cases):
        coeffs[row, k] = 1.0
    rendered = torch.from_numpy(figures.render_sphere(coeffs, view, 24))
    assert rendered.shape[1:] == mask.shape
    assert torch.isnan(rendered[:, ~mask]).all() and torch.isfinite(rendered[:, mask]).all()
    expected = torch.stack(list(cases.values())).to(torch.float32)
    torch.testing.assert_close(rendered[:, mask], expected, atol=1e-5, rtol=0)


def test_view_geometry():
    """Pixels are unit vectors; the south view faces -z with +y up and -x to the right."""
    xyz, mask = figures.view_points("south", 33)
    torch.testing.assert_close(xyz.norm(dim=-1), torch.ones(33, 33, dtype=torch.float64))
    torch.testing.assert_close(xyz[16, 16], torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64))
    assert xyz[0, 16, 1] > 0.9 and xyz[16, -1, 0] < -0.9     # top row: +y; right column: -x
    both, mask2 = figures.view_points("both", 33, direction=[1.0, 0.0, 0.0])
    assert both.shape == (33, 66, 3) and mask2.sum() == 2 * mask.sum()
    torch.testing.assert_close(both[16, 16], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(both[16, 49], torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="view must be one of"):
        figures.view_points("west")


def test_evaluation_matches_the_inverse_transform():
    """Same normalisation as the transforms: values at the DH grid equal the inverse SFT."""
    coeffs = torch.randn(3, 121, dtype=torch.float64)
    grid = inverse_spherical_fourier_transform(coeffs, 12)
    values = figures.evaluate_sphere(coeffs, dh_xyz(12).reshape(-1, 3)).reshape(3, 24, 24)
    torch.testing.assert_close(values, grid)


def test_south_view_of_a_projected_digit_looks_like_the_digit(digits):
    images, coeffs, _ = digits
    xyz, mask = figures.view_points("south", 64)
    rendered = figures.render_sphere(coeffs, "south", 64)[:, mask.numpy()]
    original = project_points(images, xyz[mask]).numpy()           # the image at the same points
    corr = [np.corrcoef(r, o)[0, 1] for r, o in zip(rendered, original)]
    assert min(corr) > 0.8, corr


def test_signal_direction_points_at_the_digit(digits):
    """Projected digits sit on the southern hemisphere, so their centre of mass is near -z."""
    d = figures.signal_direction(digits[1])
    assert d[2] < -0.9 and abs(float(d.norm()) - 1) < 1e-9


# --------------------------------------------------------------------------------- figures
def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_figure_functions_write_pngs(vae, digits, tmp_path):
    _, coeffs, labels = digits
    outs = [figures.fig_canonical(vae, coeffs, labels, tmp_path / "canonical.png"),
            figures.fig_prior_samples(vae, tmp_path / "prior.png", n=4),
            figures.fig_interpolations(vae, coeffs, labels, tmp_path / "interp.png", pairs=2, steps=3),
            figures.fig_overlays(vae, coeffs, labels, tmp_path / "overlays.png")]
    for out in outs:
        assert _is_png(out), out
    # written atomically: nothing but the PNGs is left in the directory
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in outs)


def test_umap_figure_falls_back_to_pca(monkeypatch, tmp_path, caplog):
    """The PCA fallback (UMAP's numba compilation takes ~30 s, too slow for the unit tests)."""
    monkeypatch.setitem(sys.modules, "umap", None)       # makes `import umap` raise ImportError
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 5)
    z = rng.normal(size=(50, 4)) + labels[:, None]
    with caplog.at_level("WARNING", logger="holovae"):
        out = figures.fig_umap(z, labels, tmp_path / "umap.png", seed=0)
    assert _is_png(out)
    assert "falling back to PCA" in caplog.text


def test_ae_has_no_prior_samples_or_interpolations(digits, tmp_path):
    ae = _tiny(False)
    _, coeffs, labels = digits
    with pytest.raises(ValueError, match="needs a VAE"):
        figures.fig_prior_samples(ae, tmp_path / "p.png")
    with pytest.raises(ValueError, match="needs a VAE"):
        figures.fig_interpolations(ae, coeffs, labels, tmp_path / "i.png")
    assert not list(tmp_path.iterdir())


def test_figure_cli(vae, digits, tmp_path):
    from holovae.cli import main
    from holovae.data.hdf5 import write_dataset
    from holovae.models.checkpoint import save_model

    _, coeffs, labels = digits
    save_model(vae, tmp_path / "best.pt")
    write_dataset(tmp_path / "test.h5", coeffs, IRREPS, labels=labels)
    out = tmp_path / "fig.png"
    assert main(["figure", "overlays", "--model", str(tmp_path / "best.pt"),
                 "--data", str(tmp_path / "test.h5"), "--out", str(out)]) == 0
    assert _is_png(out)
    # a kind's missing input is a clear error (exit status 1), not a traceback
    assert main(["figure", "canonical", "--model", str(tmp_path / "best.pt"), "--out", str(out)]) == 1
    assert main(["figure", "umap", "--out", str(out)]) == 1


# ------------------------------------------------------- Figure 4B: colour by an extra dataset
SS = np.array(["H", "E", "L"])


def _protein_like(tmp_path, n=30):
    """A neighbourhood-like file (residue-type labels, label_names, secondary_structure) and
    `holovae embed`-like embeddings of it (z, labels, ids)."""
    from holovae.data.hdf5 import write_dataset

    rng = np.random.default_rng(0)
    ss = SS[np.arange(n) % 3]
    labels = np.arange(n) % 20
    ids = [f"1abc_A_{i}" for i in range(n)]
    z = rng.normal(size=(n, 8)) + 3.0 * (np.arange(n) % 3)[:, None]
    data = write_dataset(tmp_path / "nbs.h5", rng.normal(size=(n, 4)), "1x0e+1x1e", labels=labels, ids=ids,
                         attrs={"label_names": [f"AA{i}" for i in range(20)]},
                         extra={"secondary_structure": np.asarray(ss, dtype=object)})
    emb = write_dataset(tmp_path / "emb.h5", rng.normal(size=(n, 4)), "1x0e+1x1e", labels=labels, ids=ids,
                        extra={"z": z})
    return data, emb, z, ss


def test_umap_coloured_by_string_categories(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "umap", None)
    _, _, z, ss = _protein_like(tmp_path)
    out = figures.fig_umap(z, ss, tmp_path / "ss.png", color_title="secondary_structure")
    assert _is_png(out)


def test_figure_cli_color_by(monkeypatch, vae, digits, tmp_path, caplog):
    from holovae.cli import main
    from holovae.data.hdf5 import write_dataset
    from holovae.models.checkpoint import save_model

    monkeypatch.setitem(sys.modules, "umap", None)       # the PCA fallback: UMAP's start is slow
    data, emb, _, _ = _protein_like(tmp_path)
    out = tmp_path / "fig4b.png"
    assert main(["figure", "umap", "--embeddings", str(emb), "--data", str(data),
                 "--color-by", "secondary_structure", "--out", str(out)]) == 0
    assert _is_png(out)
    # default colour: the labels, named by the data file's label_names
    assert main(["figure", "umap", "--embeddings", str(emb), "--data", str(data), "--out", str(out)]) == 0
    # without --data the embeddings have no secondary_structure: a clear error
    assert main(["figure", "umap", "--embeddings", str(emb), "--color-by", "secondary_structure",
                 "--out", str(tmp_path / "x.png")]) == 1
    assert "no dataset 'secondary_structure'" in caplog.text and not (tmp_path / "x.png").exists()
    # --color-by is for umap only
    assert main(["figure", "overlays", "--model", str(tmp_path / "none.pt"), "--data", str(data),
                 "--color-by", "secondary_structure", "--out", str(tmp_path / "x.png")]) == 1
    # embeddings of another file (ids differ) are refused
    other = write_dataset(tmp_path / "other.h5", np.zeros((30, 4)), "1x0e+1x1e", ids=[f"x{i}" for i in range(30)],
                          extra={"z": np.zeros((30, 8))})
    assert main(["figure", "umap", "--embeddings", str(other), "--data", str(data),
                 "--color-by", "secondary_structure", "--out", str(tmp_path / "x.png")]) == 1
    assert "ids" in caplog.text
    # --model with --data: encodes the data, colours by its extra dataset
    _, coeffs, labels = digits
    save_model(vae, tmp_path / "best.pt")
    write_dataset(tmp_path / "digits.h5", coeffs, IRREPS, labels=labels,
                  extra={"parity": np.asarray(["even" if d % 2 == 0 else "odd" for d in labels], dtype=object)})
    assert main(["figure", "umap", "--model", str(tmp_path / "best.pt"), "--data", str(tmp_path / "digits.h5"),
                 "--color-by", "parity", "--out", str(out)]) == 0
    assert _is_png(out)


def test_lba_scatter_from_predictions_csv(tmp_path):
    """Figure 4D: seeds averaged per complex; an unknown regressor is an error naming the file."""
    from holovae.cli import main

    rows = ["complex_id,fold,seed,regressor,measured,predicted"]
    for i in range(12):
        for seed in (0, 1):
            rows.append(f"c{i},{i % 3},{seed},random_forest,{4 + i * 0.5},{4.2 + i * 0.45 + 0.1 * seed}")
    csv_path = tmp_path / "pred.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "fig4D.png"
    assert main(["figure", "lba-scatter", "--predictions", str(csv_path), "--out", str(out)]) == 0
    assert out.stat().st_size > 5000
    assert main(["figure", "lba-scatter", "--predictions", str(csv_path), "--regressor", "linear",
                 "--out", str(tmp_path / "x.png")]) == 1
    assert not (tmp_path / "x.png").exists()
