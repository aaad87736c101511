"""The CG block's fused signal-norm-after-linear equals the plain composition."""
import pytest
import torch

from holovae.nn.blocks import CGBlock, add_skip
from holovae.nn.tensor_product import fused_kernel_available


def test_fused_block_equals_linear_of_signal_norm():
    block = CGBlock({l: 8 for l in range(5)}, {l: 6 for l in range(5)}).double().eval()
    with torch.no_grad():
        block.norm.bias.fill_(0.3)
        block.norm.weight.uniform_(0.5, 1.5)
    x = {l: torch.randn(2 * l + 1, 7, 8, dtype=torch.float64) for l in range(5)}
    params = [block.norm.bias, block.norm.weight, *block.linear.weights.values()]
    fused = block(x)
    plain = block.linear(block.norm(block.tp(block.bn(x))))
    for l in plain:
        torch.testing.assert_close(fused[l], plain[l], rtol=1e-12, atol=1e-12)
    g_fused = torch.autograd.grad(sum((v * v).sum() for v in fused.values()), params)
    g_plain = torch.autograd.grad(sum((v * v).sum() for v in plain.values()), params)
    for a, b in zip(g_fused, g_plain):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_add_skip_pads_and_truncates():
    new = {0: torch.zeros(1, 2, 3), 1: torch.zeros(3, 2, 5)}
    old = {0: torch.ones(1, 2, 5), 1: torch.ones(3, 2, 2), 2: torch.ones(5, 2, 3)}
    out = add_skip(new, old)
    assert out[0].sum() == 1 * 2 * 3 and out[1][..., :2].sum() == 3 * 2 * 2 and out[1][..., 2:].sum() == 0
    assert set(out) == {0, 1}


@pytest.mark.skipif(not fused_kernel_available(), reason="fused CG kernel not built (no gcc)")
@pytest.mark.parametrize("channels,lmax_out,B,uneven", [(16, 4, 9, False), (50, 6, 5, False), (7, 1, 3, False),
                                                       (5, 3, 4, True)])
@pytest.mark.parametrize("tail_kernel", [True, False])
def test_block_on_the_fused_kernel_equals_the_reference_algorithm(channels, lmax_out, B, uneven, tail_kernel,
                                                                  monkeypatch):
    """Training mode (batch statistics): outputs and the gradients of the input and of every
    parameter, float64. The fused block skips the vanishing paths' weight rows; their gradient
    is still exactly zero, as in the reference. With the tail's C kernel and with its torch form."""
    if not tail_kernel:
        from holovae.nn import block_tail_kernel
        monkeypatch.setattr(block_tail_kernel, "runs", lambda H: False)
    torch.manual_seed(0)
    cin = {l: channels for l in range(lmax_out + 1)}
    cout = {l: 3 + l if uneven else 6 for l in range(lmax_out + 1)}   # uneven: the generic path
    ref = CGBlock(cin, cout, tp_implementation="reference").double().train()
    fused = CGBlock(cin, cout, tp_implementation="fused").double().train()
    with torch.no_grad():
        ref.norm.bias.fill_(0.3)
        ref.norm.weight.uniform_(0.5, 1.5)
    fused.load_state_dict(ref.state_dict())
    x = {l: torch.randn(2 * l + 1, B, channels, dtype=torch.float64, requires_grad=True) for l in cin}
    assert fused.runs_fused(x) is not uneven and not ref.runs_fused(x)
    outs, grads = [], []
    for block in (ref, fused):
        out = block(x)
        loss = sum((v.pow(2) * (1 + l)).sum() for l, v in out.items())
        grads.append(torch.autograd.grad(loss, [*x.values(), *block.parameters()]))
        outs.append(out)
    for l in outs[0]:
        torch.testing.assert_close(outs[1][l], outs[0][l], rtol=1e-10, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("degrees", [range(5), range(1, 4)])
def test_stacked_batch_norm_equals_the_per_degree_one(degrees):
    """Outputs, gradients (input and affine parameters) and running statistics, in training
    and evaluation, float64; with and without a degree 0."""
    from holovae.nn.norms import SO3BatchNorm
    torch.manual_seed(0)
    channels = {l: 6 for l in degrees}
    per_degree, stacked = SO3BatchNorm(channels).double(), SO3BatchNorm(channels).double()
    with torch.no_grad():
        for p in per_degree.parameters():
            p.uniform_(0.5, 1.5)
    stacked.load_state_dict(per_degree.state_dict())
    for mode in ("train", "train", "eval"):
        for bn in (per_degree, stacked):
            bn.train(mode == "train")
        x = {l: (torch.randn(2 * l + 1, 9, 6, dtype=torch.float64) + (3.0 if l == 0 else 0.0)).requires_grad_()
             for l in degrees}
        ref = per_degree(x)
        ref = torch.cat([ref[l] for l in degrees])
        out = stacked.stacked(x)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        g = torch.randn_like(ref)
        wrt = lambda bn: [*x.values(), *bn.parameters()]
        for a, b in zip(torch.autograd.grad((out * g).sum(), wrt(stacked)),
                        torch.autograd.grad((ref * g).sum(), wrt(per_degree))):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        for (name, a), (_, b) in zip(stacked.named_buffers(), per_degree.named_buffers()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="equal channels"):
        SO3BatchNorm({0: 2, 1: 3}).stacked({0: torch.randn(1, 4, 2), 1: torch.randn(3, 4, 3)})


@pytest.mark.skipif(not fused_kernel_available(), reason="fused CG kernel not built (no gcc)")
@pytest.mark.parametrize("channels,degrees,initial", [([6, 6, 8, 5], [3, 3, 2, 1], None),
                                                      ([5, 7, 7], [4, 2, 1], 6)])
def test_model_passing_stacked_features_equals_the_reference_algorithm(channels, degrees, initial, monkeypatch):
    """Runs of fused blocks hand their features on stacked, with the skip connection added inside
    the block (channels widen and narrow between blocks here: the skip is zero-padded and
    truncated); against the per-degree reference path (the authors' algorithm), float64, in
    training mode: every output and the gradient of every parameter. Chunks of one sample, so
    that each kernel thread sums the weights' gradients over several chunks."""
    from holovae.models import HVAE, HVAEConfig
    from holovae.nn import fused_cg
    from holovae.so3 import irreps_from_channels
    monkeypatch.setattr(fused_cg, "LINEAR_CHUNK_BYTES", 1)
    monkeypatch.setattr(fused_cg, "LINEAR_BACKWARD_CHUNK_BYTES", 1)
    data = [initial or channels[0]] * 5 if initial is None else [3, 4, 4, 2, 2]
    cfg = dict(irreps_in=str(irreps_from_channels(data)), latent_dim=4, channels=channels, degrees=degrees,
               initial_channels=initial, vae=False)
    torch.manual_seed(0)
    ref = HVAE(HVAEConfig(**cfg, tp_implementation="reference")).double().train()
    fused = HVAE(HVAEConfig(**cfg, tp_implementation="fused")).double().train()
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(6, sum(c * (2 * l + 1) for l, c in enumerate(data)), dtype=torch.float64)
    outs, grads = [], []
    for model in (ref, fused):
        out = model(x)
        loss = out["x_rec"].pow(2).sum() + out["z"].pow(3).sum() + (out["frame"] * torch.arange(9.).reshape(3, 3)).sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
        outs.append(out)
    for k in ("z_mean", "frame", "x_rec"):
        torch.testing.assert_close(outs[1][k], outs[0][k], rtol=1e-9, atol=1e-11)
    for (name, _), a, b in zip(ref.named_parameters(), *grads):
        torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-10, msg=lambda m: f"{name}: {m}")


@pytest.mark.skipif(not fused_kernel_available(), reason="fused CG kernel not built (no gcc)")
@pytest.mark.parametrize("channels,degrees,initial", [([6, 6, 8, 5], [3, 3, 2, 1], None),
                                                      ([5, 7, 7], [4, 2, 1], 6)])
def test_model_inference_in_one_pass_equals_the_reference_algorithm(channels, degrees, initial, monkeypatch):
    """Under no_grad the fused blocks run the square and the linear in one pass
    (``BlockSquare.forward_linear``; counted, so the test cannot pass on the training path)
    and give the reference model's outputs, float64, eval mode."""
    from holovae.models import HVAE, HVAEConfig
    from holovae.nn import fused_cg
    from holovae.so3 import irreps_from_channels
    if fused_cg.blas_gemm(torch.float64) is None:
        pytest.skip("torch has no MKL gemm to call from the kernel")
    data = [channels[0]] * 5 if initial is None else [3, 4, 4, 2, 2]
    cfg = dict(irreps_in=str(irreps_from_channels(data)), latent_dim=4, channels=channels, degrees=degrees,
               initial_channels=initial, vae=True)
    torch.manual_seed(0)
    ref = HVAE(HVAEConfig(**cfg, tp_implementation="reference")).double()
    with torch.no_grad():   # away from the initial values (the signal norm's bias starts at 0)
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ref.train()
    ref(torch.randn(16, sum(c * (2 * l + 1) for l, c in enumerate(data)), dtype=torch.float64))  # batch-norm stats
    ref.eval()
    fused = HVAE(HVAEConfig(**cfg, tp_implementation="fused")).double().eval()
    fused.load_state_dict(ref.state_dict())
    calls = []
    original = fused_cg.BlockSquare.forward_linear
    monkeypatch.setattr(fused_cg.BlockSquare, "forward_linear",
                        lambda self, X, W: calls.append(1) or original(self, X, W))
    x = torch.randn(7, sum(c * (2 * l + 1) for l, c in enumerate(data)), dtype=torch.float64)
    with torch.no_grad():
        out_ref, out = ref(x), fused(x)
    # every CG block of the encoder and the decoder took the one-pass path
    assert len(calls) == sum(isinstance(m, CGBlock) for m in fused.modules()) == 2 * len(channels)
    for k in ("z_mean", "z_log_var", "frame", "x_rec"):
        torch.testing.assert_close(out[k], out_ref[k], rtol=1e-9, atol=1e-11)


def test_batch_norm_kernel_float32_and_any_thread_count(monkeypatch):
    """The stacked batch norm's C passes in float32 against its torch form (HOLOVAE_NO_FUSED),
    and the same bits on 1 and 2 threads (rows are split over threads, never a sum)."""
    from holovae.nn import batch_norm_kernel
    from holovae.nn.norms import SO3BatchNorm
    monkeypatch.delenv("HOLOVAE_NO_FUSED", raising=False)
    if not batch_norm_kernel.runs(torch.zeros(1, 1, 1)):
        pytest.skip("batch-norm kernel not built (no gcc)")
    torch.manual_seed(0)
    channels = {l: 7 for l in range(4)}
    X = (torch.randn(16, 33, 7) + 2.0).requires_grad_()
    g = torch.randn(16, 33, 7)

    def run(threads, fused):
        if fused:
            monkeypatch.delenv("HOLOVAE_NO_FUSED", raising=False)
        else:
            monkeypatch.setenv("HOLOVAE_NO_FUSED", "1")
        torch.manual_seed(1)
        bn = SO3BatchNorm(channels)
        with torch.no_grad():
            for p in bn.parameters():
                p.uniform_(0.5, 1.5)
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            out = bn.stacked(X)
            grads = torch.autograd.grad((out * g).sum(), [X, *bn.parameters()])
        finally:
            torch.set_num_threads(before)
        return [out.detach(), *grads, *bn.buffers()]
    one, two, ref = run(1, True), run(2, True), run(2, False)
    for a, b, c in zip(one, two, ref):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("skip_shape,bias", [(None, False), ((20, 13, 4), True), ((5, 13, 9), True),
                                             ((16, 13, 7), False)])
def test_block_tail_kernel_equals_the_signal_norm_algebra(dtype, skip_shape, bias, monkeypatch):
    """The tail's C passes against the algebra written out: forward ``H * w[d] * s[b]`` (+ the
    bias on row 0, + the skip on the shared rows and channels: wider, narrower, longer,
    shorter), backward ``<g, H>`` per (row, sample) and ``g * w[d] * s[b]``; the same bits on 1
    and 2 threads."""
    from holovae.nn import block_tail_kernel
    monkeypatch.delenv("HOLOVAE_NO_FUSED", raising=False)
    H0 = torch.zeros(1, 1, 1, dtype=dtype)
    if not block_tail_kernel.runs(H0):
        pytest.skip("block-tail kernel not built (no gcc)")
    g_ = torch.Generator().manual_seed(3)
    D, B, C = 16, 13, 7
    H, g = (torch.randn(D, B, C, generator=g_, dtype=torch.float64) for _ in range(2))
    w, s = torch.rand(D, generator=g_, dtype=torch.float64) + 0.5, torch.rand(B, generator=g_, dtype=torch.float64)
    shift0 = torch.randn(C, generator=g_, dtype=torch.float64) if bias else None
    skip = None if skip_shape is None else torch.randn(skip_shape, generator=g_, dtype=torch.float64)
    shared = None if skip is None else (min(D, skip.shape[0]), min(C, skip.shape[2]))
    expected = H * w[:, None, None] * s[None, :, None]
    if bias:
        expected[0] += shift0
    if skip is not None:
        expected[:shared[0], :, :shared[1]] += skip[:shared[0], :, :shared[1]]
    dfactor_expected = (g * H).sum(dim=2)
    dH_expected = g * w[:, None, None] * s[None, :, None]
    cast = lambda t: None if t is None else t.to(dtype)

    def run(threads):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            out = block_tail_kernel.scale_bias_skip(cast(H), cast(w), cast(s), cast(shift0), cast(skip), shared)
            return (out.clone(), *block_tail_kernel.grads(cast(g), cast(H), cast(w), cast(s)))
        finally:
            torch.set_num_threads(before)
    one, two = run(1), run(2)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for a, b, ref in zip(one, two, (expected, dH_expected, dfactor_expected)):
        assert torch.equal(a, b)
        torch.testing.assert_close(a.double(), ref, **tol)
    with pytest.raises(ValueError, match="skip"):
        block_tail_kernel.scale_bias_skip(cast(H), cast(w), cast(s), None, cast(torch.zeros(D, B + 1, C)), (D, C))
