"""Figures of the paper's MNIST section: canonical-frame reconstructions, latent space, prior
samples, latent interpolations (Figure 2) and per-class overlays of canonical reconstructions
(Figure 3); the latent-space plot also draws Figure 4B (protein neighbourhoods coloured by
secondary structure).

Spherical signals are drawn by evaluating their band-limited expansion
``f(x) = sum_lm f_lm Y_lm(x)`` (e3nn real SH, 'integral' normalisation, as in
:mod:`holovae.transforms.spherical`) directly at the points a picture needs, so no grid
resampling blurs them. Views (see :func:`view_points`):

- ``"south"`` / ``"north"``: orthographic view of the hemisphere facing a viewer below the south
  pole / above the north pole, +y up. The south view shows a projected MNIST digit upright and
  not mirrored (the convention of :mod:`holovae.data.mnist`).
- ``"equirect"``: the whole sphere as an equirectangular map, rows = polar angle 0..pi (north at
  the top), columns = azimuth -pi..pi (seen from outside: east to the right).
- ``"both"``: two discs side by side, the hemisphere facing a given axis (default -z: south |
  north) and the opposite one: the whole sphere, compressed near the rims. Canonical-frame
  pictures face the signals' centre of mass (:func:`render_canonical`), because the learned
  frame can put a digit anywhere.

Every figure is drawn on a ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no global
backend switch) and written atomically: a temporary ``.png`` in the target directory, then
``os.replace``, so a reader never sees a half-written file.
"""
from __future__ import annotations

import logging
import math
import os
import uuid
from pathlib import Path

import numpy as np
import torch

from ..so3 import real_spherical_harmonics

log = logging.getLogger("holovae")

VIEWS = ("south", "north", "equirect", "both")


# ------------------------------------------------------------------------------- rendering
def _pixel_centres(n: int) -> torch.Tensor:
    """``[n]`` pixel centres spanning ``[-1, 1]`` (float64)."""
    return -1.0 + (2.0 * torch.arange(n, dtype=torch.float64) + 1.0) / n


def _orthographic_points(size: int, toward: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthographic disc of the hemisphere around the unit vector ``toward [3]`` (the viewer sits
    far out along it): ``xyz [size, size, 3]`` and visibility mask ``[size, size]``.

    The picture's "up" is +y projected onto the image plane (+z if ``toward`` is along y) and
    "right" is up x toward, so the picture is what an observer outside the sphere sees (not
    mirrored). For ``toward = -z`` this is the south view: right = -x, up = +y.
    """
    d = toward.to(torch.float64) / toward.to(torch.float64).norm()
    hint = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    if abs(float(d @ hint)) > 0.99:
        hint = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    up = hint - (hint @ d) * d
    up = up / up.norm()
    right = torch.linalg.cross(up, d)
    c = _pixel_centres(size)
    v, u = torch.meshgrid(c, c, indexing="ij")     # v grows down the rows, u along the columns
    r2 = u ** 2 + v ** 2
    depth = torch.sqrt(torch.clamp(1.0 - r2, min=0.0))
    xyz = depth[..., None] * d + u[..., None] * right - v[..., None] * up
    # off the disc the point lies outside the sphere: normalise so every pixel is a unit vector
    return xyz / xyz.norm(dim=-1, keepdim=True), r2 <= 1.0


_SOUTH = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)


def _equirect_points(height: int) -> torch.Tensor:
    """``xyz [height, 2 height, 3]``: rows polar angle 0..pi, columns azimuth -pi..pi."""
    beta = math.pi * (torch.arange(height, dtype=torch.float64) + 0.5) / height
    alpha = math.pi * _pixel_centres(2 * height)
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    return torch.stack([torch.sin(b) * torch.cos(a), torch.sin(b) * torch.sin(a), torch.cos(b)], dim=-1)


def view_points(view: str = "south", size: int = 64, direction=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors seen by each pixel: ``xyz [H, W, 3]`` float64 and a mask ``[H, W]`` (bool) of
    the pixels that show the sphere. ``H = W = size`` for "south"/"north", ``W = 2 size`` for
    "equirect"/"both". ``direction [3]`` (only for "both"): the axis the left disc faces
    (default -z, giving south | north). Off-mask points are unit vectors that are not visible."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if direction is not None and view != "both":
        raise ValueError(f"direction applies to view='both' only, not {view!r}")
    if view == "equirect":
        xyz = _equirect_points(size)
        return xyz, torch.ones(xyz.shape[:2], dtype=torch.bool)
    if view == "both":
        d = _SOUTH if direction is None else torch.as_tensor(direction, dtype=torch.float64).reshape(3)
        (f, mf), (b, mb) = _orthographic_points(size, d), _orthographic_points(size, -d)
        return torch.cat([f, b], dim=1), torch.cat([mf, mb], dim=1)
    return _orthographic_points(size, _SOUTH if view == "south" else -_SOUTH)


def signal_direction(coeffs: torch.Tensor) -> torch.Tensor:
    """Unit vector ``[3]`` toward the centre of mass of the mean signal of ``coeffs [N, (L+1)^2]``
    (its degree-1 part is proportional to the integral of ``f(x) x``); -z if that part vanishes.
    Used to face canonical-frame pictures toward where the model put the digits."""
    from ..models.frame import vectors_to_cartesian

    l1 = torch.as_tensor(coeffs).detach().cpu().to(torch.float64)[:, 1:4].mean(dim=0)
    v = vectors_to_cartesian(l1)                    # e3nn's l=1 order -> (x, y, z)
    return v / v.norm() if v.norm() > 1e-12 else _SOUTH.clone()


def evaluate_sphere(coeffs: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
    """``coeffs [N, (L+1)^2]`` (irreps ``1x0e+...+1x{L}e``) at unit vectors ``xyz [P, 3]`` ->
    values ``[N, P]`` float64; the same synthesis as ``inverse_spherical_fourier_transform``."""
    coeffs = torch.as_tensor(coeffs)
    if coeffs.ndim != 2:
        raise ValueError(f"coefficients must be [N, (L+1)^2], got shape {tuple(coeffs.shape)}")
    lmax = math.isqrt(coeffs.shape[1]) - 1
    if (lmax + 1) ** 2 != coeffs.shape[1]:
        raise ValueError(f"last dimension must be (L+1)^2, got {coeffs.shape[1]}")
    Y = real_spherical_harmonics(lmax, xyz.to(torch.float64))              # [P, (L+1)^2]
    return coeffs.detach().cpu().to(torch.float64) @ Y.T


def render_sphere(coeffs: torch.Tensor, view: str = "south", size: int = 64, direction=None) -> np.ndarray:
    """Pictures of spherical signals ``coeffs [N, (L+1)^2]`` -> ``[N, H, W]`` float32 (NaN off the
    sphere). ``[N, size, size]`` for "south"/"north", ``[N, size, 2 size]`` for "equirect" and
    "both" (two discs; an equirectangular map is naturally twice as wide as tall).
    ``direction``: see :func:`view_points`."""
    xyz, mask = view_points(view, size, direction)
    values = evaluate_sphere(coeffs, xyz.reshape(-1, 3)).reshape(-1, *mask.shape)
    values[:, ~mask] = float("nan")                 # matplotlib draws NaN as the 'bad' colour
    return values.to(torch.float32).numpy()


def render_canonical(coeffs: torch.Tensor, size: int = 48) -> tuple[np.ndarray, str]:
    """Canonical-frame signals ``coeffs [N, (L+1)^2]`` -> pictures ``[N, size, 2 size]`` and a
    caption. The canonical frame can put a digit anywhere, so the whole sphere is shown as two
    discs: the hemisphere facing the signals' common centre of mass (one axis for all panels,
    so positions stay comparable) and the opposite one."""
    d = signal_direction(coeffs)
    caption = f"left: hemisphere facing ({d[0]:+.2f}, {d[1]:+.2f}, {d[2]:+.2f}), right: opposite"
    return render_sphere(coeffs, "both", size, direction=d), caption


# ------------------------------------------------------------------------------ model calls
def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_means(model, coeffs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``coeffs [N, dim]`` -> ``z_mean [N, z]`` (the latent code without sampling), on the CPU."""
    model.eval()
    dev = _device(model)
    x = torch.as_tensor(coeffs, dtype=torch.float32)
    return torch.cat([model.encode(x[i:i + batch_size].to(dev))[0].cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decode_canonical(model, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``z [N, z]`` -> reconstructions ``[N, dim]`` decoded with the identity frame, i.e. the
    signal as the model sees it in its learned canonical frame."""
    model.eval()
    dev = _device(model)
    z = torch.as_tensor(z, dtype=torch.float32)
    out = []
    for i in range(0, len(z), batch_size):
        zb = z[i:i + batch_size].to(dev)
        eye = torch.eye(3, dtype=zb.dtype, device=dev).expand(len(zb), 3, 3)
        out.append(model.decode(zb, eye).cpu())
    return torch.cat(out) if out else torch.empty(0, 0)


def _require_vae(model, what: str) -> None:
    if not getattr(model.config, "vae", False):
        raise ValueError(f"{what} needs a VAE (model.config.vae is False): an AE has no prior to "
                         f"sample and its latent space is not regularised for interpolation")


def _check_labels(coeffs, labels) -> np.ndarray:
    if labels is None:
        raise ValueError("this figure needs digit labels (the data file has none)")
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(coeffs):
        raise ValueError(f"{len(coeffs)} coefficient rows but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("no data rows to draw")
    return labels


def first_of_each_class(labels: np.ndarray, n: int = 10) -> np.ndarray:
    """Row indices ``[<= n]``: the first example of each of the ``n`` smallest classes present."""
    classes = np.unique(labels)[:n]
    return np.array([int(np.flatnonzero(labels == c)[0]) for c in classes], dtype=np.int64)


# ----------------------------------------------------------------------------------- drawing
def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")  # room for suptitles
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out) -> Path:
    """Write ``fig`` to ``out`` (PNG) atomically; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a unique hidden name in the same directory (so os.replace is atomic); opened with "xb"
    # rather than mkstemp so that the file gets the usual umask permissions, not 0600
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.png")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", bbox_inches="tight")
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    log.info("wrote %s", out)
    return out


def _show(ax, image: np.ndarray, title: str | None = None) -> None:
    """One panel: grey-scale, black = 0 (the empty sphere), white = the panel's maximum."""
    import matplotlib

    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")    # off-sphere pixels
    finite = image[np.isfinite(image)]
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    ax.imshow(image, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _image_grid(rows: list[np.ndarray], out, suptitle: str, titles=None, row_labels=None) -> Path:
    """``rows``: a list of ``[n_cols, H, W]`` image stacks, one per figure row."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    h, w = rows[0].shape[1:]
    panel = 1.4
    fig = _new_figure(panel * n_cols * w / h, panel * n_rows + 0.6)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.axis("off")
                continue
            _show(ax, row[j], titles[i][j] if titles else None)
        if row_labels:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
    fig.suptitle(suptitle, fontsize=9)
    return save_figure(fig, out)


# ----------------------------------------------------------------------------------- figures
def fig_canonical(model, coeffs, labels, out, n: int = 10, size: int = 48) -> Path:
    """Figure 2A: one test digit per class (up to ``n``). Top: the originals; bottom: their
    reconstructions decoded with the identity frame (the model's canonical frame). The originals
    are shown as south | north hemispheres (the digit sits on the south one, upright); the
    reconstructions as seen by :func:`render_canonical`, since the frame can put them anywhere."""
    x = torch.as_tensor(coeffs, dtype=torch.float32)
    labels = _check_labels(x, labels)
    idx = first_of_each_class(labels, n)
    canonical = decode_canonical(model, encode_means(model, x[idx]))
    pictures, caption = render_canonical(canonical, size)
    rows = [render_sphere(x[idx], "both", size), pictures]
    titles = [[f"{labels[i]}" for i in idx], [""] * len(idx)]
    return _image_grid(rows, out, "Top: originals (left: south hemisphere, right: north). Bottom: "
                                  f"reconstructions in the canonical frame ({caption})",
                       titles=titles, row_labels=["original", "canonical"])


def _embed_2d(z: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """``z [N, d]`` -> 2-D coordinates ``[N, 2]`` and the method's name (UMAP, else PCA); a 2-D
    latent space (the amino-acid models) is shown as it is."""
    if z.shape[1] == 2:
        return z, "The 2-D latent space"
    try:
        import umap
    except ImportError as exc:
        log.warning("umap-learn is not importable (%s): falling back to PCA for the latent-space plot", exc)
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # "n_jobs overridden by random_state" etc.
            reducer = umap.UMAP(n_components=2, random_state=seed,
                                n_neighbors=max(2, min(15, len(z) - 1)))
            return np.asarray(reducer.fit_transform(z)), "UMAP"
    centred = z - z.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:                          # a 1-D latent space: pad the second axis
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords, "PCA (umap-learn unavailable)"


def _category_text(value) -> str:
    text = str(value)
    return text if text.strip() else "(none)"


def fig_umap(z, labels, out, seed: int = 0, color_title: str = "digit", label_names=None) -> Path:
    """Figure 2B (and 4B): ``z [N, z]`` (latent means) embedded in 2-D by UMAP
    (``random_state=seed``), one colour per category of ``labels [N]``: digits by default,
    or any per-sample categories (e.g. the secondary structure H/E/L of protein
    neighbourhoods, Figure 4B), named ``color_title`` in the legend. ``label_names``
    (optional, indexable by label, e.g. residue names for residue-type labels) names the
    legend entries of integer labels."""
    z = np.asarray(torch.as_tensor(z).detach().cpu(), dtype=np.float64)
    if z.ndim != 2 or len(z) < 3:
        raise ValueError(f"need latent codes [N >= 3, z], got shape {z.shape}")
    labels = _check_labels(z, labels)
    import matplotlib

    coords, method = _embed_2d(z, seed)
    categories = np.unique(labels)
    fig = _new_figure(6.0, 5.0)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab10" if len(categories) <= 10 else "tab20"]
    size = 4.0 if len(z) <= 5000 else 1.0             # protein sets have 1e5+ points
    for k, c in enumerate(categories):
        sel = labels == c
        name = c
        if label_names is not None and np.issubdtype(np.asarray(c).dtype, np.integer) and 0 <= c < len(label_names):
            name = label_names[int(c)]
        ax.scatter(coords[sel, 0], coords[sel, 1], s=size, color=cmap(k % cmap.N), label=_category_text(name),
                   alpha=0.8, linewidths=0)
    ax.legend(title=color_title, markerscale=6.0 / math.sqrt(size), fontsize=8, loc="center left",
              bbox_to_anchor=(1.0, 0.5), ncols=1 if len(categories) <= 25 else 2)
    ax.set_xticks([])
    ax.set_yticks([])
    what = "digits" if color_title == "digit" else f"samples, coloured by {color_title}"
    if z.shape[1] == 2:
        ax.set_title(f"{method} z ({len(z)} {what})", fontsize=10)
    else:
        ax.set_title(f"{method} of the latent codes z ({z.shape[1]}-D, {len(z)} {what})", fontsize=10)
    return save_figure(fig, out)


def fig_prior_samples(model, out, n: int = 16, seed: int = 0, size: int = 48) -> Path:
    """Figure 2C: ``n`` samples ``z ~ N(0, I)`` decoded with the identity frame (VAE only)."""
    _require_vae(model, "prior samples")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.config.latent_dim, generator=gen)
    images, caption = render_canonical(decode_canonical(model, z), size)
    n_cols = math.ceil(math.sqrt(n))
    rows = [images[i:i + n_cols] for i in range(0, n, n_cols)]
    return _image_grid(rows, out, f"Samples z ~ N(0, I) decoded in the canonical frame\n({caption})")


def _interpolation_pairs(labels: np.ndarray, pairs: int) -> list[tuple[int, int]]:
    """Row-index pairs of digits of different classes: classes (0,1), (2,3), ... cycling, and
    later examples of a class when the cycle repeats."""
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("interpolations need digits of at least two classes")
    members = {c: np.flatnonzero(labels == c) for c in classes}
    out = []
    for k in range(pairs):
        a, b = classes[(2 * k) % len(classes)], classes[(2 * k + 1) % len(classes)]
        rep = (2 * k) // len(classes)                # which example of the class
        out.append((int(members[a][rep % len(members[a])]), int(members[b][rep % len(members[b])])))
    return out


def fig_interpolations(model, coeffs, labels, out, pairs: int = 4, steps: int = 8, size: int = 48) -> Path:
    """Figure 2D: for ``pairs`` test digits of different classes, decode (identity frame)
    ``z(t) = (1 - t) z_a + t z_b`` for ``steps`` values of t in [0, 1] (z = latent means)."""
    _require_vae(model, "latent interpolations")
    if steps < 2 or pairs < 1:
        raise ValueError(f"need pairs >= 1 and steps >= 2, got pairs={pairs}, steps={steps}")
    x = torch.as_tensor(coeffs, dtype=torch.float32)
    labels = _check_labels(x, labels)
    idx = _interpolation_pairs(labels, pairs)
    z = encode_means(model, x[[i for pair in idx for i in pair]]).reshape(pairs, 2, -1)
    t = torch.linspace(0, 1, steps)[None, :, None]
    path = (1 - t) * z[:, :1] + t * z[:, 1:]                      # [pairs, steps, z]
    images, caption = render_canonical(decode_canonical(model, path.reshape(pairs * steps, -1)), size)
    rows = [images[p * steps:(p + 1) * steps] for p in range(pairs)]
    row_labels = [f"{labels[a]} -> {labels[b]}" for a, b in idx]
    return _image_grid(rows, out, f"Linear interpolation of z between test digits, decoded in the canonical "
                                  f"frame ({caption})", row_labels=row_labels)


def fig_overlays(model, coeffs, labels, out, per_class: int = 50, size: int = 48) -> Path:
    """Figure 3: per class, the mean of the canonical-frame reconstructions of up to
    ``per_class`` test digits. A sharp digit means the learned frame is consistent within the
    class; a frame that varied would smear the overlay. (The synthesis is linear, so the mean
    of the pictures is the picture of the mean coefficients.)"""
    x = torch.as_tensor(coeffs, dtype=torch.float32)
    labels = _check_labels(x, labels)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c)[:per_class] for c in classes]
    # one encode/decode pass over all selected digits (batches, not one call per class)
    canonical = decode_canonical(model, encode_means(model, x[np.concatenate(members)]))
    bounds = np.cumsum([0] + [len(m) for m in members])
    means = [canonical[a:b].mean(dim=0) for a, b in zip(bounds[:-1], bounds[1:])]
    titles = [f"{c} (n={len(m)})" for c, m in zip(classes, members)]
    images, caption = render_canonical(torch.stack(means), size)
    n_cols = min(5, len(classes))
    grid = [images[i:i + n_cols] for i in range(0, len(classes), n_cols)]
    grid_titles = [titles[i:i + n_cols] for i in range(0, len(classes), n_cols)]
    return _image_grid(grid, out, f"Mean of up to {per_class} canonical-frame reconstructions per class\n"
                                  f"({caption})", titles=grid_titles)


def fig_lba_scatter(measured, predicted, out, title: str = "", seed_count: int = 1) -> Path:
    """Figure 4D: predicted vs measured -log Kd/Ki of the test complexes (``measured [N]``,
    ``predicted [N]``, pooled over folds; several seeds are averaged per complex by the caller),
    with the identity line, Pearson r and the RMSD in the corner."""
    from ..evaluate.regression import regression_metrics

    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    if measured.shape != predicted.shape or measured.ndim != 1 or len(measured) < 2:
        raise ValueError(f"need two equal 1-D arrays of >= 2 values, got {measured.shape} and {predicted.shape}")
    m = regression_metrics(measured, predicted)
    fig = _new_figure(4.6, 4.4)
    ax = fig.subplots()
    lo = float(min(measured.min(), predicted.min())) - 0.5
    hi = float(max(measured.max(), predicted.max())) + 0.5
    ax.plot([lo, hi], [lo, hi], color="0.6", linewidth=1, zorder=0)
    ax.scatter(measured, predicted, s=14, color="tab:blue", alpha=0.8, linewidths=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("measured -log Kd/Ki")
    ax.set_ylabel("predicted -log Kd/Ki" + (f" (mean of {seed_count} seeds)" if seed_count > 1 else ""))
    ax.text(0.03, 0.97, f"n = {len(measured)}\nPearson r = {m['pearson']:.3f}\nRMSD = {m['rmsd']:.3f}",
            transform=ax.transAxes, va="top", fontsize=9)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)
