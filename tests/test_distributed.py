"""Data-parallel training (torchrun, gloo, CPU): 2 processes take the same steps as 1 process
with the same global batch, and the synchronised SO3BatchNorm equals the full-batch norm."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available in this torch build",
                allow_module_level=True)

IRREPS = "1x0e+1x1e+1x2e"
# 53 training samples in global batches of 16: the last batch has 5, split 3 + 2 over the processes
N_TRAIN, N_VAL, BATCH, EPOCHS = 53, 13, 16, 3
SETS = [f"model.irreps_in={IRREPS}", "model.latent_dim=4", "model.channels=[4,4]", "model.degrees=[2,1]",
        f"train.epochs={EPOCHS}", f"train.batch_size={BATCH}", "train.device=cpu", "train.seed=3",
        "train.no_kl_epochs=2", "train.warmup_kl_epochs=1"]
# Parameters whose exact gradient is zero: biases followed (through linear maps) by a batch norm
# that subtracts the batch mean. Adam turns their rounding-noise gradients into full-size steps,
# so they (and the running means they shift) drift differently with any change of summation
# order, 1 process against 1 process on another thread count included. Their drift is bounded
# by the sum of the learning rates; they do not change the training outputs (batch statistics)
# but enter the evaluation-mode outputs, hence the looser tolerance on validation metrics.
NULL_DIRECTIONS = ("latent_to_scalars.bias", "z_mean.bias", "bn.running_mean")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _torchrun_this_file(*args, cwd):
    """One ``torchrun --standalone --nproc_per_node=2`` launch of this file as a script (see
    ``_distributed_script``): a single launch keeps the test cheap (each process imports torch)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).resolve()), *args]
    r = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"torchrun failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def _history(d: Path) -> list[dict]:
    return json.loads((d / "history.json").read_text())


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _cli_args(tmp: Path) -> tuple[list[str], list[str]]:
    common = ["--train", str(tmp / "train.h5"), "--val", str(tmp / "val.h5"), "--no-progress"]
    return common, [a for s in SETS for a in ("--set", s)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """1 process (in this process); then one 2-process torchrun launch that checks the
    synchronised batch norm, trains from scratch (``holovae train``, distributed mode detected
    from the torchrun environment) and resumes a 1-process run interrupted after 2 epochs."""
    from holovae.cli import main
    from holovae.config import load_run_config
    from holovae.data.hdf5 import read_dataset, write_dataset
    from holovae.data.stream import H5Rows
    from holovae.train import train

    tmp = tmp_path_factory.mktemp("ddp")
    g = torch.Generator().manual_seed(11)
    write_dataset(tmp / "train.h5", torch.randn(N_TRAIN, 9, generator=g) + 0.5, IRREPS)
    write_dataset(tmp / "val.h5", torch.randn(N_VAL, 9, generator=g) + 0.5, IRREPS)
    common, sets = _cli_args(tmp)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", *common, *sets, "--out", str(tmp / "one")]) == 0

        class Stop(Exception):
            pass

        def stop_after_two(rec):
            if rec["epoch"] == 2:
                raise Stop

        model_cfg, train_cfg = load_run_config(None, SETS)
        train_cfg.progress = False
        tr, va = read_dataset(tmp / "train.h5"), read_dataset(tmp / "val.h5")
        with pytest.raises(Stop):
            train(model_cfg, tr.coefficients, va.coefficients, train_cfg, tmp / "resumed", on_epoch=stop_after_two)
        _, stream_cfg = load_run_config(None, SETS + ["train.data=stream"])
        stream_cfg.progress = False
        train(model_cfg, H5Rows(tmp / "train.h5"), H5Rows(tmp / "val.h5"), stream_cfg, tmp / "one_stream")
    finally:
        torch.set_num_threads(threads)
    assert not (tmp / "resumed" / "history.json").exists()
    _torchrun_this_file(str(tmp), cwd=tmp)
    return tmp


def test_two_processes_follow_the_single_process_trajectory(runs):
    one, two = _history(runs / "one"), _history(runs / "two")
    assert [r["epoch"] for r in two] == list(range(1, EPOCHS + 1)) and all(r["processes"] == 2 for r in two)
    worst = max(_rel(a["train_loss"], b["train_loss"]) for a, b in zip(one, two))
    print(f"max relative train-loss difference 1 vs 2 processes: {worst:.2e}")
    assert worst < 1e-4, (one, two)
    for a, b in zip(one, two):
        assert a["lr"] == b["lr"] and a["lambda_kl"] == b["lambda_kl"]
        assert _rel(a["val_loss"], b["val_loss"]) < 1e-2
    # only rank 0 wrote: the outputs are the usual ones, without rank-suffixed copies
    assert sorted(p.name for p in (runs / "two").iterdir()) == ["best.pt", "history.json", "last.pt"]

    w1 = torch.load(runs / "one" / "last.pt", weights_only=False)["state_dict"]
    w2 = torch.load(runs / "two" / "last.pt", weights_only=False)["state_dict"]
    assert w1.keys() == w2.keys() and not any(k.startswith("module.") for k in w2)
    lr_sum = sum(r["lr"] for r in one) * 4 * 2   # steps per epoch, twice for safety
    for k in w1:
        atol = lr_sum if k.endswith(NULL_DIRECTIONS) else 1e-4
        torch.testing.assert_close(w2[k], w1[k], atol=atol, rtol=1e-4, msg=lambda m: f"{k}: {m}")


def test_two_processes_stream_their_shards_and_follow_one_streaming_process(runs):
    one, two = _history(runs / "one_stream"), _history(runs / "two_stream")
    assert all(r["processes"] == 2 for r in two)
    assert max(_rel(a["train_loss"], b["train_loss"]) for a, b in zip(one, two)) < 1e-4, (one, two)
    assert all(_rel(a["val_loss"], b["val_loss"]) < 1e-2 for a, b in zip(one, two))
    # each process read its shard of every batch, nothing else: torch.tensor_split's shard sizes
    # of the batches (16, 16, 16, 5) and of the validation set (13 rows), once per epoch; plus its
    # share of the one-block NaN/normalising passes (the single block of each file: rank 0)
    read = [json.loads((runs / f"rows_read.{r}.json").read_text()) for r in range(2)]
    sizes = [16, 16, 16, N_TRAIN - 48]
    for r in range(2):
        train_rows = EPOCHS * sum(len(torch.arange(b).tensor_split(2)[r]) for b in sizes) + (N_TRAIN if r == 0 else 0)
        val_rows = EPOCHS * len(torch.arange(N_VAL).tensor_split(2)[r]) + (N_VAL if r == 0 else 0)
        assert read[r] == [train_rows, val_rows], (r, read[r])


def test_two_processes_resume_a_single_process_run(runs):
    one, resumed = _history(runs / "one"), _history(runs / "resumed")
    assert [r["epoch"] for r in resumed] == list(range(1, EPOCHS + 1))
    assert "processes" not in resumed[0] and resumed[-1]["processes"] == 2
    assert _rel(one[-1]["train_loss"], resumed[-1]["train_loss"]) < 1e-4


# --- synchronised batch norm ---------------------------------------------------------------

CHANNELS = {0: 3, 1: 3, 2: 2}
B_FULL = 7   # split 4 + 3


def _bn_case(dtype):
    """A norm with non-trivial affine parameters and running stats, an input whose scalars have a
    large mean (the shifted statistics must not cancel), and weights of a scalar test loss."""
    from holovae.nn import SO3BatchNorm

    g = torch.Generator().manual_seed(5)
    bn = SO3BatchNorm(CHANNELS).to(dtype)
    with torch.no_grad():
        for p in bn.parameters():
            p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=dtype))
        bn.running_mean.fill_(2.0)
    x = {l: torch.randn(2 * l + 1, B_FULL, c, generator=g, dtype=dtype) for l, c in CHANNELS.items()}
    x[0] = x[0] * 0.5 + 4.0
    r = {l: torch.randn(2 * l + 1, B_FULL, c, generator=g, dtype=dtype) for l, c in CHANNELS.items()}
    return bn, x, r


def _bn_run(bn, x, r, batch: slice):
    """Forward (training) on ``x[:, batch]``, backward of ``sum(out * r)``: outputs, input and
    parameter gradients, buffers."""
    xs = {l: v[:, batch].clone().requires_grad_(True) for l, v in x.items()}
    bn.train()
    out = bn(xs)
    sum((out[l] * r[l][:, batch]).sum() for l in out).backward()
    return ({l: v.detach() for l, v in out.items()}, {l: v.grad for l, v in xs.items()},
            {k: p.grad.clone() for k, p in bn.named_parameters()}, {k: b.clone() for k, b in bn.named_buffers()})


def _bn_check(rank: int, out: Path) -> None:
    """On each of the 2 processes: the norm on its shard of the batch (rows 0-3 or 4-6)."""
    res = {}
    for dtype in (torch.float64, torch.float32):
        bn, x, r = _bn_case(dtype)
        shard = slice(0, 4) if rank == 0 else slice(4, B_FULL)
        out_, gx, gp, buf = _bn_run(bn, x, r, shard)
        for k in gp:   # DDP would average; the test loss is a plain sum over the shards
            dist.all_reduce(gp[k])
        bn.eval()
        with torch.no_grad():
            ev = bn({l: v[:, shard] for l, v in x.items()})
        res[str(dtype)] = (out_, gx, gp, buf, ev)
    torch.save(res, out / f"bn.{rank}.pt")


def test_synchronised_batch_norm_equals_the_full_batch_norm(runs):
    parts = [torch.load(runs / f"bn.{r}.pt", weights_only=False) for r in range(2)]
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        bn, x, r = _bn_case(dtype)
        ref_out, ref_gx, ref_gp, ref_buf = _bn_run(bn, x, r, slice(None))
        bn.eval()
        with torch.no_grad():
            ref_ev = bn(x)
        (o0, gx0, gp0, buf0, ev0), (o1, gx1, gp1, buf1, ev1) = (p[str(dtype)] for p in parts)
        for l in CHANNELS:
            torch.testing.assert_close(torch.cat([o0[l], o1[l]], dim=1), ref_out[l], atol=tol, rtol=tol)
            torch.testing.assert_close(torch.cat([gx0[l], gx1[l]], dim=1), ref_gx[l], atol=tol, rtol=tol)
            torch.testing.assert_close(torch.cat([ev0[l], ev1[l]], dim=1), ref_ev[l], atol=tol, rtol=tol)
        for k in ref_gp:
            torch.testing.assert_close(gp0[k], ref_gp[k], atol=tol, rtol=tol)
            torch.testing.assert_close(gp1[k], ref_gp[k], atol=tol, rtol=tol)
        for k in ref_buf:   # running statistics: identical on both processes and equal to the reference
            torch.testing.assert_close(buf0[k], buf1[k], atol=0, rtol=0)
            torch.testing.assert_close(buf0[k], ref_buf[k], atol=tol, rtol=tol)


def test_single_process_batch_norm_does_not_synchronise():
    from holovae import distributed as D

    assert not D.active() and D.world_size() == 1 and D.rank() == 0 and D.is_main()
    D.barrier()
    D.cleanup()   # no-ops without a process group
    assert D.all_reduce_sum(torch.ones(2)).tolist() == [1.0, 1.0]


def test_distributed_flag_needs_torchrun(tmp_path, monkeypatch):
    from holovae import distributed as D
    from holovae.cli import main

    for k in D.TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    assert main(["train", "--train", "x.h5", "--val", "y.h5", "--out", str(tmp_path), "--distributed"]) == 1
    with pytest.raises(RuntimeError, match="torchrun"):
        D.setup("cpu")


def _distributed_script(tmp: Path) -> None:
    """What each torchrun process runs (``python tests/test_distributed.py TMP``)."""
    from holovae import distributed as D
    from holovae.cli import main

    torch.set_num_threads(1)
    D.setup("cpu")
    try:
        assert D.active() and D.world_size() == 2
        _bn_check(D.rank(), tmp)
        common, sets = _cli_args(tmp)
        # mode detected from the torchrun environment, then forced with --distributed
        assert main(["train", *common, *sets, "--out", str(tmp / "two")]) == 0
        assert main(["train", *common, *sets, "--out", str(tmp / "resumed"), "--distributed"]) == 0
        # streamed: every process reads only its shards; the counts are checked by the test
        from holovae.config import load_run_config
        from holovae.data.stream import H5Rows
        from holovae.train import train
        model_cfg, stream_cfg = load_run_config(None, SETS + ["train.data=stream"])
        stream_cfg.progress = False
        tr, va = H5Rows(tmp / "train.h5"), H5Rows(tmp / "val.h5")
        train(model_cfg, tr, va, stream_cfg, tmp / "two_stream")
        (tmp / f"rows_read.{D.rank()}.json").write_text(json.dumps([tr.rows_read, va.rows_read]))
        assert D.is_initialized()   # the command leaves a caller's process group alone
    finally:
        D.cleanup()


if __name__ == "__main__":
    _distributed_script(Path(sys.argv[1]))
