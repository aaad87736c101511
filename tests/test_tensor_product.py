"""CG tensor square: fast paths against the per-path reference, paths, equivariance."""
import pytest
import torch

from holovae.nn.paths import efficient_paths, full_paths
from holovae.nn.tensor_product import ChannelwiseTensorProduct, FullTensorProduct, fused_kernel_available
from holovae.so3 import random_rotation, wigner_D

FAST = ["sparse"] + (["fused"] if fused_kernel_available() else [])


def test_path_counts_match_the_paper():
    # the ETP (the paper's appendix, the authors' code): 191 kept triples at L=10->10 and 73 at
    # L=6->6; full products 381 / 106
    assert len(efficient_paths(tuple(range(11)), 10)) == 191
    assert len(efficient_paths(tuple(range(7)), 6)) == 73
    assert len(full_paths(tuple(range(11)), 10)) == 381
    assert len(full_paths(tuple(range(7)), 6)) == 106


def _features(L, C, B, dtype, requires_grad=True):
    return {l: torch.randn(2 * l + 1, B, C, dtype=dtype, requires_grad=requires_grad) for l in range(L + 1)}


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("L,L_out,C,B", [(1, 2, 3, 5), (4, 2, 7, 9), (6, 6, 5, 4), (10, 10, 3, 3), (10, 8, 2, 6)])
def test_fast_equals_reference_values_and_gradients(impl, L, L_out, C, B):
    ref = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L_out, implementation="reference")
    fast = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L_out, implementation=impl)
    x = _features(L, C, B, torch.float64)
    y_ref, y_fast = ref(x), fast(x)
    assert y_ref.keys() == y_fast.keys()
    for l in y_ref:
        assert y_fast[l].shape == y_ref[l].shape == (2 * l + 1, B, C * len(ref.paths_by_l3[l]))
        torch.testing.assert_close(y_fast[l], y_ref[l], rtol=1e-10, atol=1e-12)
    g = {l: torch.randn_like(v) for l, v in y_ref.items()}
    grads_ref = torch.autograd.grad(sum((y_ref[l] * g[l]).sum() for l in g), list(x.values()))
    grads_fast = torch.autograd.grad(sum((y_fast[l] * g[l]).sum() for l in g), list(x.values()))
    for a, b in zip(grads_ref, grads_fast):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", FAST)
def test_fast_float32_close_to_reference(impl):
    ref = ChannelwiseTensorProduct(16, tuple(range(11)), 10, implementation="reference")
    fast = ChannelwiseTensorProduct(16, tuple(range(11)), 10, implementation=impl)
    x = _features(10, 16, 20, torch.float32, requires_grad=False)
    a, b = ref(x), fast(x)
    for l in a:
        assert (a[l] - b[l]).abs().max() <= 1e-5 * a[l].abs().max()


@pytest.mark.parametrize("impl", ["reference"] + FAST)
def test_output_is_equivariant(impl):
    L, C = 6, 4
    tp = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L, implementation=impl)
    x = _features(L, C, 3, torch.float64, requires_grad=False)
    R = random_rotation(generator=torch.Generator().manual_seed(1))
    rot = lambda feats: {l: torch.einsum("ij,jbc->ibc", wigner_D(l, R), v) for l, v in feats.items()}
    y1, y2 = rot(tp(x)), tp(rot(x))
    for l in y1:
        # e3nn's CG and Wigner-D constants agree only to ~1e-7 relative per factor (their
        # spherical harmonics and D disagree by ~1e-6 at l = 6 in float64), which bounds this
        assert (y2[l] - y1[l]).abs().max() <= 2e-5 * y1[l].abs().max()


def test_odd_self_paths_vanish_and_sparse_drops_them():
    # x_l ⊗ x_l -> odd l3 is antisymmetric in the two factors, so it is zero for one tensor
    tp = ChannelwiseTensorProduct(2, (0, 1, 2), 3, implementation="reference")
    y = tp(_features(2, 2, 4, torch.float64, requires_grad=False))
    paths = tp.paths_by_l3[3]
    p = paths.index((2, 2, 3))
    assert y[3][:, :, 2 * p:2 * p + 2].abs().max() < 1e-12


def test_full_tensor_product_is_equivariant_and_counts_channel_pairs():
    tp = FullTensorProduct({0: 2, 1: 3, 2: 2}, 2)
    x = {0: torch.randn(1, 4, 2, dtype=torch.float64), 1: torch.randn(3, 4, 3, dtype=torch.float64),
         2: torch.randn(5, 4, 2, dtype=torch.float64)}
    y = tp(x)
    # l3=0 paths, every ordered channel pair (the authors' count): (0,0) 4, (1,1) 9, (2,2) 4
    assert y[0].shape[-1] == tp.channels_out[0] == 4 + 9 + 4
    R = random_rotation(generator=torch.Generator().manual_seed(2))
    rot = lambda feats: {l: torch.einsum("ij,jbc->ibc", wigner_D(l, R), v) for l, v in feats.items()}
    y_rot, y_exp = tp(rot(x)), rot(y)
    for l in y:
        assert (y_rot[l] - y_exp[l]).abs().max() <= 2e-5 * y_exp[l].abs().max()


def test_bad_arguments():
    with pytest.raises(ValueError, match="implementation"):
        ChannelwiseTensorProduct(2, (0, 1), 1, implementation="magic")
    with pytest.raises(ValueError, match="rule"):
        ChannelwiseTensorProduct(2, (0, 1), 1, rule="some")


needs_fused = pytest.mark.skipif("fused" not in FAST, reason="fused CG kernel not built (no gcc)")


def _nonzero_reference(tp, x):
    """The reference square restricted to the nonzero paths, and the signal power."""
    ref = ChannelwiseTensorProduct(tp.channels, tp.degrees_in, tp.lmax_out, implementation="reference")(x)
    C, out = tp.channels, {}
    for l3, keep in tp.nonzero_paths.items():
        out[l3] = torch.cat([ref[l3][..., k * C:(k + 1) * C] for k in keep], dim=-1) if keep \
            else ref[l3][..., :0]
    power = sum(v.pow(2).sum(dim=(0, 2)) / v.shape[0] for v in ref.values())
    return out, power


@needs_fused
@pytest.mark.parametrize("L,L_out,C,B", [(1, 1, 3, 5), (4, 2, 7, 9), (6, 6, 50, 5), (10, 10, 16, 7), (3, 4, 1, 13)])
def test_square_with_power_equals_reference_values_and_gradients(L, L_out, C, B):
    """The kernel's per-degree, copy-free layout (C need not divide the kernel's 48-wide
    column tiles: C = 50 and 7 make tiles straddle samples) against the per-path reference."""
    tp = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L_out, implementation="fused")
    x = _features(L, C, B, torch.float64)
    (y, power), (y_ref, power_ref) = tp.square_with_power(x), _nonzero_reference(tp, x)
    assert y.keys() == y_ref.keys()
    for l in y:
        assert y[l].shape == y_ref[l].shape == (2 * l + 1, B, C * len(tp.nonzero_paths[l]))
        torch.testing.assert_close(y[l], y_ref[l], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(power, power_ref, rtol=1e-10, atol=1e-12)
    g = {l: torch.randn_like(v) for l, v in y_ref.items()}
    gp = torch.randn(B, dtype=torch.float64)
    loss = lambda ys, p: sum((ys[l] * g[l]).sum() for l in g) + (p * gp).sum()
    grads = torch.autograd.grad(loss(y, power), list(x.values()))
    grads_ref = torch.autograd.grad(loss(y_ref, power_ref), list(x.values()))
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@needs_fused
def test_square_with_power_gradcheck_and_float32():
    tp = ChannelwiseTensorProduct(5, (0, 1, 2, 3), 3, implementation="fused")
    x = _features(3, 5, 4, torch.float64)
    degrees = list(x)

    def f(*xs):
        y, p = tp.square_with_power(dict(zip(degrees, xs)))
        return (*y.values(), p)
    assert torch.autograd.gradcheck(f, tuple(x.values()))
    x32 = {l: v.detach().float() for l, v in x.items()}
    (y, p), (y_ref, p_ref) = tp.square_with_power(x32), _nonzero_reference(tp, x)
    for l in y:
        torch.testing.assert_close(y[l].double(), y_ref[l].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p.double(), p_ref.detach(), rtol=1e-5, atol=1e-6)


@needs_fused
def test_vanishing_paths_are_the_odd_self_paths():
    tp = ChannelwiseTensorProduct(4, tuple(range(7)), 6, implementation="fused")
    for l3, paths in tp.paths_by_l3.items():
        zero = {k for k, (l1, l2, _) in enumerate(paths) if l1 == l2 and l3 % 2}
        assert set(tp.nonzero_paths[l3]) == set(range(len(paths))) - zero
    # a degree with no surviving path is an empty [2l3+1, B, 0] block, still differentiable
    tp = ChannelwiseTensorProduct(3, (1,), 1, implementation="fused")
    x = _features(1, 3, 4, torch.float64)
    del x[0]
    y, p = tp.square_with_power(x)
    assert tp.nonzero_paths == {0: [0], 1: []} and y[1].shape == (3, 4, 0)
    (g,) = torch.autograd.grad(y[0].sum() + p.sum(), [x[1]])
    torch.testing.assert_close(g, torch.autograd.grad(_nonzero_reference(tp, x)[0][0].sum()
                                                      + _nonzero_reference(tp, x)[1].sum(), [x[1]])[0])
    # other implementations and devices fall back to forward()
    assert ChannelwiseTensorProduct(4, (0, 1), 1, implementation="sparse").square_with_power(
        _features(1, 4, 2, torch.float64)) is None


def _linear_reference(tp, x, weights):
    """``y_l3 @ W_l3`` on the reference square's nonzero paths, stacked, and the power."""
    y, power = _nonzero_reference(tp, x)
    B = y[0].shape[1]
    return torch.cat([y[l].reshape(y[l].shape[0] * B, -1) @ W for l, W in zip(y, weights)]
                     ).reshape(-1, B, weights[0].shape[1]), power


def _runs_linear():
    from holovae.nn import fused_cg
    return "fused" in FAST and fused_cg.blas_gemm(torch.float64) is not None


needs_linear = pytest.mark.skipif(not _runs_linear(), reason="fused CG kernel or torch's MKL gemm missing")

# (L, L_out, C, B, C_out, chunk bytes or None for the default)
LINEAR_CASES = [
    (6, 6, 50, 13, 50, None),           # C = 50: the chunk's 48-wide column tiles straddle samples;
                                        # c_out = 50: the gemm makes 48 channels, dots_ the last 2
    (10, 10, 16, 9, 16, None),
    (4, 2, 7, 29, 9, 2048),              # many chunks of one or two samples, the last one ragged;
                                        # 9 = 8 + one dot-product channel over K = 7 * paths
    (3, 4, 1, 1, 3, None),               # one channel, one sample
    (2, 2, 3, 5, 5, None),               # c_out <= 8: the gemm makes every channel
]


def _linear_case(L, L_out, C, B, c_out, seed):
    """A fused tensor product, float64 features (requiring grad) and random weights per degree."""
    tp = ChannelwiseTensorProduct(C, tuple(range(L + 1)), L_out, implementation="fused")
    x = _features(L, C, B, torch.float64)
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(C * len(tp.nonzero_paths[l]), c_out, generator=g, dtype=torch.float64)
               for l in tp.paths_by_l3]
    return tp, x, weights, g


def _on_threads(threads, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


@needs_linear
@pytest.mark.parametrize("L,L_out,C,B,c_out,chunk_bytes", LINEAR_CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_square_times_weights_equals_the_reference_square_then_matmul(L, L_out, C, B, c_out, chunk_bytes,
                                                                      threads, monkeypatch):
    """Inference's one pass (square and per-degree linear, the square kept in cache) against the
    per-path reference square followed by a matmul, float64, with the signal power."""
    from holovae.nn import fused_cg
    if chunk_bytes:
        monkeypatch.setattr(fused_cg, "LINEAR_CHUNK_BYTES", chunk_bytes)
    tp, x, weights, _ = _linear_case(L, L_out, C, B, c_out, seed=1)
    X = torch.cat([x[l] for l in tp.degrees_in]).detach()
    H, power = _on_threads(threads, lambda: tp.square_times_weights(X, weights))
    H_ref, power_ref = _linear_reference(tp, x, weights)
    assert H.shape == (sum(2 * l + 1 for l in tp.paths_by_l3), B, c_out)
    torch.testing.assert_close(H, H_ref.detach(), rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(power, power_ref.detach(), rtol=1e-10, atol=1e-12)
    H32, p32 = tp.square_times_weights(X.float(), [w.float() for w in weights])
    torch.testing.assert_close(H32.double(), H_ref.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(p32.double(), power_ref.detach(), rtol=1e-5, atol=1e-6)
    # training's form keeps the square for the backward: the same H and power, and the square
    # equal to the plain kernel's outputs
    op = tp.linear_op(X)
    H_kept, power_kept, ys = _on_threads(threads, lambda: op.forward_linear(X, weights, keep_square=True))
    torch.testing.assert_close(H_kept, H_ref.detach(), rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(power_kept, power_ref.detach(), rtol=1e-10, atol=1e-12)
    for y, y_ref in zip(ys, op.forward(X)[0]):
        torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-13)


@needs_linear
def test_square_times_weights_zero_rows_for_a_degree_without_paths_and_bad_weights():
    from holovae.nn import fused_cg
    tp = ChannelwiseTensorProduct(3, (1,), 1, implementation="fused")       # degree 1: no path left
    x = _features(1, 3, 4, torch.float64)
    del x[0]
    W0 = torch.randn(3, 2, dtype=torch.float64)
    H, power = tp.square_times_weights(x[1].detach(), [W0, torch.zeros(0, 2, dtype=torch.float64)])
    H_ref, power_ref = _linear_reference(tp, x, [W0, torch.zeros(0, 2, dtype=torch.float64)])
    assert H.shape == (4, 4, 2) and H[1:].abs().max() == 0
    torch.testing.assert_close(H, H_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(power, power_ref.detach(), rtol=1e-12, atol=1e-12)
    op = tp._block_square(torch.float64)
    # the training backward with that block: its weight's gradient is empty, the others exact
    weights_ref = [W0.clone().requires_grad_(), torch.zeros(0, 2, dtype=torch.float64, requires_grad=True)]
    H_ref, power_ref = _linear_reference(tp, x, weights_ref)
    dH, gp = torch.randn_like(H_ref), torch.randn(4, dtype=torch.float64)
    dx_ref, *dW_ref = torch.autograd.grad((H_ref * dH).sum() + (power_ref * gp).sum(), [x[1], *weights_ref])
    X = x[1].detach()
    dX, dWs = op.backward_linear(dH, [W0, torch.zeros(0, 2, dtype=torch.float64)], gp, X, op.forward(X)[0],
                                 weight_grads=True)
    torch.testing.assert_close(dX, dx_ref, rtol=1e-12, atol=1e-12)
    assert [tuple(d.shape) for d in dWs] == [(3, 2), (0, 2)]
    torch.testing.assert_close(dWs[0], dW_ref[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"weight \(4, 2\)"):
        op.forward_linear(x[1].detach(), [torch.zeros(4, 2, dtype=torch.float64), None])
    with pytest.raises(ValueError, match="2 blocks"):
        op.forward_linear(x[1].detach(), [W0])
    with pytest.raises(ValueError, match="float64"):
        op.forward_linear(x[1].detach(), [W0.float(), None])
    assert fused_cg.blas_gemm(torch.float16) is None


@needs_linear
@pytest.mark.parametrize("L,L_out,C,B,c_out,chunk_bytes", LINEAR_CASES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("with_power", [True, False])
def test_backward_linear_equals_autograd_of_the_reference_square_then_matmul(L, L_out, C, B, c_out, chunk_bytes,
                                                                             threads, with_power, monkeypatch):
    """Training's backward with the square's output gradients made in the cache: the gradients
    in X and in the weights of <dH, y @ W> (+ <gpower, power>) against autograd through the
    per-path reference square and a matmul, float64 (and float32 loosely)."""
    from holovae.nn import fused_cg
    if chunk_bytes:
        monkeypatch.setattr(fused_cg, "LINEAR_BACKWARD_CHUNK_BYTES", chunk_bytes)
    tp, x, weights, g = _linear_case(L, L_out, C, B, c_out, seed=2)
    weights_ref = [w.clone().requires_grad_() for w in weights]
    H_ref, power_ref = _linear_reference(tp, x, weights_ref)
    dH = torch.randn(H_ref.shape, generator=g, dtype=torch.float64)
    gp = torch.randn(B, generator=g, dtype=torch.float64) if with_power else None
    loss = (H_ref * dH).sum() + ((power_ref * gp).sum() if with_power else 0)
    grads_ref = torch.autograd.grad(loss, list(x.values()) + weights_ref)
    dX_ref, dW_ref = torch.cat(grads_ref[:len(x)]), grads_ref[len(x):]
    X = torch.cat([v.detach() for v in x.values()])
    op = tp.linear_op(X)
    ys, _ = op.forward(X)
    dX = _on_threads(threads, lambda: op.backward_linear(dH, weights, gp, X, ys))
    torch.testing.assert_close(dX, dX_ref, rtol=1e-10, atol=1e-11)
    # with the weights' gradients, from the square training's forward kept
    ys_kept = op.forward_linear(X, weights, keep_square=True)[2]
    dX2, dWs = _on_threads(threads, lambda: op.backward_linear(dH, weights, gp, X, ys_kept, weight_grads=True))
    torch.testing.assert_close(dX2, dX_ref, rtol=1e-10, atol=1e-11)
    assert len(dWs) == len(dW_ref)
    for dW, ref in zip(dWs, dW_ref):
        assert dW.shape == ref.shape
        torch.testing.assert_close(dW, ref, rtol=1e-10, atol=1e-11)
    X32 = X.float()
    ys32, _ = tp.linear_op(X32).forward(X32)
    dX32 = tp.linear_op(X32).backward_linear(dH.float(), [w.float() for w in weights],
                                             None if gp is None else gp.float(), X32, ys32)
    torch.testing.assert_close(dX32.double(), dX_ref, rtol=1e-3, atol=1e-3)
