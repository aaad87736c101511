"""The fused C kernel of the CG tensor square against a plain torch computation."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from holovae.nn import buffer_pool, fused_cg

HAVE_GCC = shutil.which("gcc") is not None
REPO = Path(__file__).resolve().parents[1]

needs_kernel = pytest.mark.skipif(not HAVE_GCC, reason="gcc not installed")


@pytest.fixture(autouse=True)
def _fused_enabled(monkeypatch):
    monkeypatch.delenv("HOLOVAE_NO_FUSED", raising=False)


# ------------------------------------------------------------------------------------------
# reference
# ------------------------------------------------------------------------------------------

def ref_forward(X, row, i, j, val, n_out):
    X = X.double()
    Y = torch.zeros(n_out, X.shape[1], dtype=torch.float64)
    return Y.index_add_(0, row.long(), val.double()[:, None] * X[i.long()] * X[j.long()])


def ref_backward(dY, X, row, i, j, val):
    X, dY = X.double(), dY.double()
    w = val.double()[:, None] * dY[row.long()]
    dX = torch.zeros_like(X)
    dX.index_add_(0, i.long(), w * X[j.long()])
    dX.index_add_(0, j.long(), w * X[i.long()])
    return dX


def random_entries(d_in, nnz, n_out, seed=0, sort=True, ordered=True, idx_dtype=torch.int64):
    g = torch.Generator().manual_seed(seed)
    row = torch.randint(0, n_out, (nnz,), generator=g)
    i = torch.randint(0, d_in, (nnz,), generator=g)
    j = torch.randint(0, d_in, (nnz,), generator=g)
    if ordered:
        i, j = torch.minimum(i, j), torch.maximum(i, j)
    if sort:
        row, perm = row.sort(stable=True)
        i, j = i[perm], j[perm]
    val = torch.randn(nnz, generator=g, dtype=torch.float64)
    return row.to(idx_dtype), i.to(idx_dtype), j.to(idx_dtype), val


TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def check(X, dY, row, i, j, val, n_out):
    dt = X.dtype
    Y = fused_cg.cg_square_forward(X, row, i, j, val, n_out)
    assert Y.dtype == dt and Y.shape == (n_out, X.shape[1])
    torch.testing.assert_close(Y.double(), ref_forward(X, row, i, j, val, n_out), **TOL[dt])
    dX = fused_cg.cg_square_backward(dY, X, row, i, j, val)
    assert dX.dtype == dt and dX.shape == X.shape
    torch.testing.assert_close(dX.double(), ref_backward(dY, X, row, i, j, val), **TOL[dt])


# ------------------------------------------------------------------------------------------
# correctness
# ------------------------------------------------------------------------------------------

@needs_kernel
def test_available():
    assert fused_cg.available()


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("N", [1, 7, 23, 24, 25, 47, 48, 49, 97, 300])
def test_matches_reference_ragged_N(dtype, N):
    d_in, n_out = 25, 60
    row, i, j, val = random_entries(d_in, 400, n_out, seed=N)
    X = torch.randn(d_in, N, dtype=dtype)
    dY = torch.randn(n_out, N, dtype=dtype)
    check(X, dY, row, i, j, val.to(dtype), n_out)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d_in,nnz,n_out,N", [(121, 20000, 1500, 301), (49, 6000, 500, 1025),
                                              (225, 30000, 3000, 50)])
def test_matches_reference_real_sizes(dtype, d_in, nnz, n_out, N):
    row, i, j, val = random_entries(d_in, nnz, n_out, seed=1)
    X = torch.randn(d_in, N, dtype=dtype)
    dY = torch.randn(n_out, N, dtype=dtype)
    check(X, dY, row, i, j, val.to(dtype), n_out)


@needs_kernel
@pytest.mark.parametrize("idx_dtype", [torch.int32, torch.int64, torch.int16])
def test_index_dtypes_and_unsorted_entries(idx_dtype):
    # unsorted rows, i > j allowed, duplicates, diagonal entries, empty output rows
    row, i, j, val = random_entries(30, 700, 90, seed=3, sort=False, ordered=False,
                                    idx_dtype=idx_dtype)
    row = torch.cat([row, row[:50]])
    i = torch.cat([i, i[:50]])
    j = torch.cat([j, i[:50]])            # diagonal duplicates of existing rows
    val = torch.cat([val, torch.randn(50, dtype=torch.float64)])
    n_out = 100                           # rows 90..99 have no entries
    X = torch.randn(30, 130, dtype=torch.float64)
    dY = torch.randn(n_out, 130, dtype=torch.float64)
    check(X, dY, row, i, j, val, n_out)
    assert fused_cg.cg_square_forward(X, row, i, j, val, n_out)[90:].abs().max() == 0


@needs_kernel
def test_real_cg_entries():
    """The entry lists the model actually uses (skipped if that module is not there)."""
    cg_entries = pytest.importorskip("holovae.nn.cg_entries")
    paths = pytest.importorskip("holovae.nn.paths")
    degrees = tuple(range(5))
    e = cg_entries.cg_square_entries(degrees, paths.full_paths(degrees, 4))
    for dtype in (torch.float32, torch.float64):
        X = torch.randn(e.n_in, 77, dtype=dtype)
        dY = torch.randn(e.n_out, 77, dtype=dtype)
        check(X, dY, e.row, e.i, e.j, e.val.to(dtype), e.n_out)


@needs_kernel
def test_empty_cases():
    row, i, j, val = random_entries(10, 0, 5)
    X = torch.randn(10, 33)
    Y = fused_cg.cg_square_forward(X, row, i, j, val, 5)
    assert Y.shape == (5, 33) and Y.abs().max() == 0
    dX = fused_cg.cg_square_backward(torch.randn(5, 33), X, row, i, j, val)
    assert dX.shape == (10, 33) and dX.abs().max() == 0
    row, i, j, val = random_entries(10, 40, 5)
    assert fused_cg.cg_square_forward(torch.randn(10, 0), row, i, j, val, 5).shape == (5, 0)
    assert fused_cg.cg_square_backward(torch.randn(5, 0), torch.randn(10, 0), row, i, j,
                                       val).shape == (10, 0)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_thread_count_does_not_change_result(dtype):
    row, i, j, val = random_entries(49, 3000, 400, seed=5)
    X = torch.randn(49, 1000, dtype=dtype)
    dY = torch.randn(400, 1000, dtype=dtype)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = fused_cg.cg_square_forward(X, row, i, j, val, 400)
        g1 = fused_cg.cg_square_backward(dY, X, row, i, j, val)
        torch.set_num_threads(max(2, old))
        y2 = fused_cg.cg_square_forward(X, row, i, j, val, 400)
        g2 = fused_cg.cg_square_backward(dY, X, row, i, j, val)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(y1, y2) and torch.equal(g1, g2)   # tiles are independent: bitwise


@needs_kernel
def test_plan_cache_sees_in_place_changes():
    row, i, j, val = random_entries(20, 300, 40, seed=7)
    X = torch.randn(20, 50, dtype=torch.float64)
    dY = torch.randn(40, 50, dtype=torch.float64)
    for _ in range(2):                     # second round hits the cache
        check(X, dY, row, i, j, val, 40)
    val.mul_(-0.5)                         # same tensors, new contents
    j[::3] = (j[::3] + 1) % 20
    i, j = torch.minimum(i, j), torch.maximum(i, j)
    check(X, dY, row, i, j, val, 40)
    for k in range(20):                    # more distinct lists than cache slots
        r2, i2, j2, v2 = random_entries(20, 100 + k, 40, seed=100 + k)
        check(X, dY, r2, i2, j2, v2, 40)
    fused_cg.clear_plan_cache()
    check(X, dY, row, i, j, val, 40)


@needs_kernel
def test_out_argument_and_non_contiguous_input():
    row, i, j, val = random_entries(16, 200, 30, seed=9)
    X = torch.randn(100, 16, dtype=torch.float64).t()          # non-contiguous view
    out = torch.full((30, 100), float("nan"), dtype=torch.float64)
    Y = fused_cg.cg_square_forward(X, row, i, j, val, 30, out=out)
    assert Y.data_ptr() == out.data_ptr()
    torch.testing.assert_close(Y, ref_forward(X, row, i, j, val, 30))
    dY = torch.randn(30, 100, dtype=torch.float64)
    outg = torch.full((16, 100), float("nan"), dtype=torch.float64)
    dX = fused_cg.cg_square_backward(dY, X, row, i, j, val, out=outg)
    assert dX.data_ptr() == outg.data_ptr()
    torch.testing.assert_close(dX, ref_backward(dY, X, row, i, j, val))
    with pytest.raises(ValueError, match="out must"):
        fused_cg.cg_square_forward(X, row, i, j, val, 30, out=torch.empty(30, 99, dtype=torch.float64))
    with pytest.raises(ValueError, match="out must"):
        fused_cg.cg_square_forward(X, row, i, j, val, 30, out=torch.empty(30, 100))


@needs_kernel
def test_autograd_function():
    row, i, j, val = random_entries(9, 60, 12, seed=11)
    X = torch.randn(9, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: fused_cg.cg_square(x, row, i, j, val, 12), (X,))
    Y = fused_cg.cg_square(X, row, i, j, val, 12)
    Y.square().sum().backward()
    Xr = X.detach().clone().requires_grad_(True)
    ref_forward(Xr, row, i, j, val, 12).square().sum().backward()
    torch.testing.assert_close(X.grad, Xr.grad)


@needs_kernel
def test_validation_errors():
    row, i, j, val = random_entries(10, 50, 8)
    X = torch.randn(10, 20)
    with pytest.raises(TypeError, match="float32 or float64"):
        fused_cg.cg_square_forward(X.half(), row, i, j, val, 8)
    with pytest.raises(TypeError, match="float32 or float64"):
        fused_cg.cg_square_forward(X.long(), row, i, j, val, 8)
    with pytest.raises(ValueError, match="CPU"):
        fused_cg.cg_square_forward(X.to("meta"), row, i, j, val, 8)
    with pytest.raises(ValueError, match="2-D"):
        fused_cg.cg_square_forward(X[0], row, i, j, val, 8)
    with pytest.raises(ValueError, match="equal lengths"):
        fused_cg.cg_square_forward(X, row[:-1], i, j, val, 8)
    with pytest.raises(TypeError, match="integer"):
        fused_cg.cg_square_forward(X, row.float(), i, j, val, 8)
    with pytest.raises(IndexError):
        fused_cg.cg_square_forward(X, row, i, j, val, 3)          # row >= n_out
    bad = j.clone()
    bad[5] = 10
    with pytest.raises(IndexError):
        fused_cg.cg_square_forward(X, row, i, bad, val, 8)
    bad[5] = -1
    with pytest.raises(IndexError):
        fused_cg.cg_square_backward(torch.randn(8, 20), X, row, i, bad, val)
    with pytest.raises(TypeError, match="same dtype"):
        fused_cg.cg_square_backward(torch.randn(8, 20, dtype=torch.float64), X, row, i, j, val)
    with pytest.raises(ValueError, match="disagree on N"):
        fused_cg.cg_square_backward(torch.randn(8, 21), X, row, i, j, val)
    with pytest.raises(IndexError):
        fused_cg.cg_square_backward(torch.randn(4, 20), X, row, i, j, val)   # row >= D_out


# ------------------------------------------------------------------------------------------
# fallback / build machinery
# ------------------------------------------------------------------------------------------

def test_env_var_disables(monkeypatch):
    monkeypatch.setenv("HOLOVAE_NO_FUSED", "1")
    assert fused_cg.available() is False
    row, i, j, val = random_entries(4, 5, 3)
    with pytest.raises(RuntimeError, match="HOLOVAE_NO_FUSED"):
        fused_cg.cg_square_forward(torch.randn(4, 2), row, i, j, val, 3)
    monkeypatch.setenv("HOLOVAE_NO_FUSED", "0")
    assert fused_cg.available() is HAVE_GCC


def test_missing_compiler_warns_once_and_falls_back(tmp_path, monkeypatch, caplog):
    # a fresh "first use" in this process: forget the loaded library (restored afterwards)
    monkeypatch.setattr(fused_cg._native, "lib", None)
    monkeypatch.setattr(fused_cg._native, "failure", None)
    monkeypatch.setenv("HOLOVAE_CACHE", str(tmp_path))
    monkeypatch.setenv("HOLOVAE_CC", "no-such-compiler-holovae")
    with caplog.at_level("WARNING", logger=fused_cg.__name__):
        assert fused_cg.available() is False
        assert fused_cg.available() is False
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no-such-compiler-holovae" in warnings[0].getMessage()
    row, i, j, val = random_entries(4, 5, 3)
    with pytest.raises(RuntimeError, match="unavailable"):
        fused_cg.cg_square_forward(torch.randn(4, 2), row, i, j, val, 3)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow   # two subprocesses compile the kernel: ~7 s
@needs_kernel
def test_build_cache_and_concurrent_first_use(tmp_path, monkeypatch):
    """Two processes compiling into the same empty cache at once; then a cache hit."""
    code = textwrap.dedent("""
        import torch
        from holovae.nn import fused_cg
        X = torch.randn(5, 9, dtype=torch.float64)
        r = torch.tensor([0, 1, 1]); i = torch.tensor([0, 1, 2]); j = torch.tensor([0, 3, 4])
        v = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
        print("AVAILABLE", fused_cg.available())
        Y = fused_cg.cg_square_forward(X, r, i, j, v, 2)
        ref = torch.stack([X[0] * X[0], 2 * X[1] * X[3] - X[2] * X[4]])
        print("OK", bool(torch.allclose(Y, ref)))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HOLOVAE_NO_FUSED", "HOLOVAE_CC")}
    env.update(HOLOVAE_CACHE=str(tmp_path),
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "AVAILABLE True" in out and "OK True" in out, out + err
    libs = sorted(tmp_path.glob("*.so"))
    assert len(libs) == 1 and not list(tmp_path.glob("*.tmp*")), list(tmp_path.iterdir())
    # this process computes the same cache key and loads the file without compiling
    monkeypatch.setenv("HOLOVAE_CACHE", str(tmp_path))
    monkeypatch.setenv("HOLOVAE_CC", "no-such-compiler-holovae")   # would fail if it compiled
    mtime = libs[0].stat().st_mtime_ns
    lib = fused_cg._load()
    assert lib.holovae_cg_abi_version() == fused_cg._ABI_VERSION
    assert libs[0].stat().st_mtime_ns == mtime


def test_a_library_of_another_abi_version_is_refused_before_its_signatures(tmp_path, monkeypatch):
    """NativeLibrary asks the library for its ABI version (abi_symbol) and refuses one that
    differs, so a stale cached build never gets a ctypes signature it does not have."""
    from holovae.native import NativeLibrary
    monkeypatch.setenv("HOLOVAE_CACHE", str(tmp_path))
    monkeypatch.delenv("HOLOVAE_NO_FUSED", raising=False)
    src = tmp_path / "abi_probe.c"
    src.write_text("int probe_abi_version(void) { return 3; }\nint probe_answer(void) { return 42; }\n")
    declared = []
    old = NativeLibrary("abi_probe", src, 2, "probe_abi_version", declared.append, "probe kernel")
    assert not old.available() and "abi_probe library ABI version mismatch" in old.failure
    assert declared == []
    same = NativeLibrary("abi_probe", src, 3, "probe_abi_version", declared.append, "probe kernel")
    assert same.available() and declared == [same.lib] and same.lib.probe_answer() == 42


# ------------------------------------------------------------------------------------------
# the output pool of BlockSquare
# ------------------------------------------------------------------------------------------

def _block_square(C=5):
    from holovae.nn.tensor_product import ChannelwiseTensorProduct
    tp = ChannelwiseTensorProduct(C, (0, 1, 2), 2, implementation="fused")
    return tp, tp._block_square(torch.float64)


@needs_kernel
def test_pool_never_hands_out_a_buffer_in_use(monkeypatch):
    monkeypatch.delenv("HOLOVAE_NO_POOL", raising=False)
    fused_cg.clear_plan_cache()
    _, op = _block_square()
    X1, X2 = torch.randn(9, 4, 5, dtype=torch.float64), torch.randn(9, 4, 5, dtype=torch.float64)
    ys1, p1 = op.forward(X1)
    keep = [y.clone() for y in ys1]
    view = ys1[1].reshape(-1)                  # a view alone must keep its storage out of the pool
    ys1 = [ys1[0], None, ys1[2]]
    ys2, _ = op.forward(X2)
    assert ys2[1].data_ptr() != view.data_ptr()
    torch.testing.assert_close(view, keep[1].reshape(-1), rtol=0, atol=0)
    del view, ys1, keep, ys2
    ys3, _ = op.forward(X1)                    # everything released: the buffers come back
    ys4, _ = op.forward(X2)
    assert {y.data_ptr() for y in ys3}.isdisjoint(y.data_ptr() for y in ys4)
    ref, _ = op.forward(X1)
    ptrs = {y.data_ptr() for y in ys3}
    del ys3
    again, _ = op.forward(X1)
    assert {y.data_ptr() for y in again} == ptrs     # reused, and fully overwritten
    for a, b in zip(again, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_kernel
def test_pool_is_safe_with_tensors_saved_for_backward(monkeypatch):
    """Two forwards before either backward (gradient accumulation): the first one's saved
    outputs must survive the second forward."""
    monkeypatch.delenv("HOLOVAE_NO_POOL", raising=False)
    tp, _ = _block_square(C=6)
    xs = [{l: torch.randn(2 * l + 1, 7, 6, dtype=torch.float64, requires_grad=True) for l in (0, 1, 2)}
          for _ in range(2)]

    def loss(x):
        y, p = tp.square_with_power(x)
        return sum((v.pow(2) * (l + 1)).sum() for l, v in y.items()) + p.pow(2).sum()

    pooled = [loss(x) for x in xs]               # both graphs alive at once
    grads = [torch.autograd.grad(l, list(x.values())) for l, x in zip(pooled, xs)]
    monkeypatch.setenv("HOLOVAE_NO_POOL", "1")
    for x, g in zip(xs, grads):
        ref = torch.autograd.grad(loss(x), list(x.values()))
        for a, b in zip(g, ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@needs_kernel
def test_pool_can_be_switched_off_and_trims_free_buffers(monkeypatch):
    _, op = _block_square()
    X = torch.randn(9, 3, 5, dtype=torch.float64)
    monkeypatch.setenv("HOLOVAE_NO_POOL", "1")
    fused_cg.clear_plan_cache()
    op.forward(X)
    assert not buffer_pool.held_storages()
    monkeypatch.delenv("HOLOVAE_NO_POOL")
    monkeypatch.setenv("HOLOVAE_POOL_MB", "0")      # keep nothing that is free
    for B in (3, 4, 5):
        op.forward(torch.randn(9, B, 5, dtype=torch.float64))
    held = buffer_pool.held_storages()
    assert len(held) <= 1                            # only the newest call's buffer survives


@needs_kernel
def test_a_model_s_steps_build_no_plans_once_warm():
    """Every block's forward and backward plan stays cached across steps (the MNIST model has
    18; an LRU smaller than that missed on every call and rebuilt them all each step)."""
    from holovae.models import HVAE, HVAEConfig
    from holovae.so3 import irreps_from_channels
    cfg = dict(irreps_in=str(irreps_from_channels([1] * 11)), latent_dim=16, channels=[16] * 6,
               degrees=[10, 10, 8, 4, 2, 1], initial_channels=None, vae=True)
    torch.manual_seed(0)
    model = HVAE(HVAEConfig(**cfg, tp_implementation="fused"))
    x = torch.randn(3, 121)

    def step():
        out = model(x)
        (out["x_rec"].pow(2).sum() + out["z"].sum()).backward()
    step()
    before = fused_cg.plan_builds()
    for _ in range(2):
        step()
    assert fused_cg.plan_builds() == before
