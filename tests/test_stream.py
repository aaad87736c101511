"""Training data streamed from HDF5 (``train.data: stream``): rows read on demand equal the
file's rows (h5py reading the whole dataset is the reference), the block-wise shuffle, the
one-pass normalising constant, and training: streamed and in-memory runs with the same batch
order give the same history, and a streamed run resumed after an interruption matches an
uninterrupted one. The memory cap test is in test_stream_memory.py."""
import json

import h5py
import numpy as np
import pytest
import torch

from holovae.data import stream
from holovae.data.hdf5 import write_dataset
from holovae.data.stream import H5Rows, Prefetcher, TensorRows, epoch_order
from holovae.models import HVAEConfig
from holovae.train import TrainConfig, normalizing_constant, train

IRREPS = "1x0e+1x1e+1x2e"


def _data(n=61, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 9, generator=g) * torch.tensor([3.0] + [1.0] * 3 + [0.5] * 5) + 0.3


def _write(path, x, **dataset_kw):
    """A file as write_dataset lays it out, with chosen chunks / compression / layout."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "holovae-steerable-v1"
        f.attrs["irreps"] = IRREPS
        f.attrs["json:transform"] = json.dumps({"lmax": 2})
        f.create_dataset("coefficients", data=x.numpy(), **dataset_kw)
    return path


LAYOUTS = {   # name -> (h5py dataset options, read with pread?)
    "chunked": (dict(chunks=(7, 9)), True),
    "contiguous": (dict(), True),
    "float64": (dict(chunks=(5, 9), dtype="f8"), True),
    "gzip": (dict(chunks=(7, 9), compression="gzip", compression_opts=4), False),
    "chunks_split_columns": (dict(chunks=(7, 3)), False),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_rows_read_on_demand_are_the_files_rows(tmp_path, layout):
    kw, direct = LAYOUTS[layout]
    x = _data()
    path = _write(tmp_path / "x.h5", x, **kw)
    with h5py.File(path, "r") as f:
        ref = torch.from_numpy(f["coefficients"][()].astype(np.float32))
    rows = H5Rows(path)
    assert rows.direct == direct and len(rows) == 61 and rows.dim == 9
    assert rows.attrs["transform"] == {"lmax": 2}
    idx = torch.randperm(61, generator=torch.Generator().manual_seed(1))[:40]
    assert torch.equal(rows.take(idx), ref[idx])                      # any order, runs and gaps
    assert torch.equal(rows.take(torch.arange(3, 30)), ref[3:30])     # runs across chunk boundaries
    assert torch.equal(rows.slice(55, 61), ref[55:61])
    assert rows.take(torch.zeros(0, dtype=torch.long)).shape == (0, 9)
    assert rows.rows_read == 40 + 27 + 6
    with pytest.raises(IndexError, match="x.h5"):
        rows.take(torch.tensor([61]))
    rows.close()


def test_a_file_without_coefficients_or_with_other_irreps_is_named(tmp_path):
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.attrs["irreps"] = IRREPS
    with pytest.raises(ValueError, match="empty.h5: missing dataset 'coefficients'"):
        H5Rows(tmp_path / "empty.h5")
    path = _write(tmp_path / "x.h5", _data())
    with pytest.raises(ValueError, match="x.h5: irreps mismatch"):
        H5Rows(path, expected_irreps="9x0e")


def test_block_shuffle_keeps_blocks_within_windows():
    n, block, window = 103, 7, 3
    gen = torch.Generator().manual_seed(5)
    order = epoch_order(n, gen, block, window)
    assert sorted(order.tolist()) == list(range(n))
    # locality: the rows of a block are read within one window of the order
    pos = torch.empty(n, dtype=torch.long)
    pos[order] = torch.arange(n)
    for b in range(-(-n // block)):
        p = pos[b * block:(b + 1) * block]
        assert p.max() - p.min() < window * block, b
    # seeded: the same generator state gives the same order, the next epoch another one
    again = epoch_order(n, torch.Generator().manual_seed(5), block, window)
    assert torch.equal(order, again) and not torch.equal(order, epoch_order(n, gen, block, window))
    # rows are mixed within a window, not left in file order
    assert (order.diff() != 1).float().mean() > 0.5


def test_full_shuffle_is_a_randperm():
    """block_rows=None: the uniform shuffle of in-memory training (the order it always had)."""
    a = epoch_order(50, torch.Generator().manual_seed(2), None, 4)
    assert torch.equal(a, torch.randperm(50, generator=torch.Generator().manual_seed(2)))


def test_normalising_constant_in_one_streamed_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "SCAN_BYTES", 4 * 9 * 6)   # blocks of 6 rows: 11 blocks
    x = _data()
    path = _write(tmp_path / "x.h5", x, chunks=(7, 9))
    ls = np.repeat([0, 1, 2], [1, 3, 5])
    xd = x.double().numpy()
    authors = np.mean(np.sqrt((xd ** 2 / (2 * ls + 1)).sum(axis=1)))   # hyperparameters.md
    streamed = normalizing_constant(H5Rows(path), IRREPS)
    assert streamed == normalizing_constant(x, IRREPS)                  # the same bits
    assert streamed == pytest.approx(authors, rel=1e-12)


def test_nan_in_a_streamed_file_is_named(tmp_path):
    x = _data()
    x[17, 4] = float("nan")
    path = _write(tmp_path / "bad.h5", x, chunks=(7, 9))
    with pytest.raises(ValueError, match=r"bad.h5: NaN/inf coefficients in rows \[17\]"):
        normalizing_constant(H5Rows(path), IRREPS)


def test_prefetcher_hands_over_errors_and_stops_early():
    def boom():
        raise OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        with Prefetcher([lambda: 1, boom, lambda: 3]) as it:
            list(it)
    produced = []
    thunks = ((lambda i=i: produced.append(i) or i) for i in range(1000))
    with Prefetcher(thunks, depth=2) as it:
        assert next(it) == 0 and next(it) == 1
    assert len(produced) < 10   # the reader stopped with the consumer


# ---------------------------------------------------------------------------------- training
def _config():
    return HVAEConfig(IRREPS, 3, [4, 4], [2, 1], vae=True)


def _train_cfg(**kw):
    base = dict(epochs=4, batch_size=8, lr=3e-3, no_kl_epochs=1, warmup_kl_epochs=1, lambda_x=50.0, lambda_kl=0.2,
                device="cpu", progress=False, data="stream", stream_window=2, validations_per_epoch=2)
    base.update(kw)
    return TrainConfig(**base)


def _history(d):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((d / "history.json").read_text())]


@pytest.fixture
def files(tmp_path):
    x, v = _data(61), _data(23, seed=1)
    return x, v, _write(tmp_path / "train.h5", x, chunks=(7, 9)), _write(tmp_path / "val.h5", v, chunks=(5, 9))


def test_streamed_training_equals_in_memory_training_with_the_same_order(tmp_path, files):
    x, v, tr_path, va_path = files
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(_config(), TensorRows(x, block_rows=7), v, _train_cfg(), tmp_path / "memory")
        tr, va = H5Rows(tr_path), H5Rows(va_path)
        train(_config(), tr, va, _train_cfg(), tmp_path / "stream")
    finally:
        torch.set_num_threads(threads)
    assert _history(tmp_path / "memory") == _history(tmp_path / "stream")
    # every training row read once per epoch (+ the normalising pass); validation twice per epoch (+ its pass)
    assert tr.rows_read == 61 * (4 + 1) and va.rows_read == 23 * (2 * 4 + 1)
    a = torch.load(tmp_path / "memory" / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "stream" / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_batch_order_follows_train_data(tmp_path, files):
    """memory: a uniform shuffle; stream: the block-wise one, which is the uniform one when the
    data are a single block (holovae's chunks are ~1 MB: small files train as in memory)."""
    x, v, _, _ = files
    for name, data, rows in (("memory", "memory", x), ("one_block", "stream", x),
                             ("blocks", "stream", TensorRows(x, block_rows=7))):
        train(_config(), rows, v, _train_cfg(epochs=1, data=data), tmp_path / name)
    loss = {name: _history(tmp_path / name)[0]["train_loss"] for name in ("memory", "one_block", "blocks")}
    assert loss["memory"] == loss["one_block"] != loss["blocks"]


class _Interrupt(Exception):
    pass


def test_an_interrupted_streamed_run_resumes_to_the_same_outputs(tmp_path, files):
    _, _, tr_path, va_path = files

    def cut(rec):
        if rec["epoch"] == 2:
            raise _Interrupt
    train(_config(), H5Rows(tr_path), H5Rows(va_path), _train_cfg(), tmp_path / "whole")
    with pytest.raises(_Interrupt):
        train(_config(), H5Rows(tr_path), H5Rows(va_path), _train_cfg(), tmp_path / "cut", on_epoch=cut)
    train(_config(), H5Rows(tr_path), H5Rows(va_path), _train_cfg(), tmp_path / "cut")
    assert _history(tmp_path / "whole") == _history(tmp_path / "cut")
    a = torch.load(tmp_path / "whole" / "best.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "best.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_the_cli_streams_with_train_data_stream(tmp_path):
    from holovae.cli import main
    x, v = _data(61), _data(23, seed=1)
    write_dataset(tmp_path / "train.h5", x, IRREPS, attrs={"transform": {"lmax": 2}})
    write_dataset(tmp_path / "val.h5", v, IRREPS)
    sets = ["model.latent_dim=3", "model.channels=[4,4]", "model.degrees=[2,1]", "train.epochs=2",
            "train.batch_size=8", "train.device=cpu", "train.data=stream"]
    args = ["train", "--train", str(tmp_path / "train.h5"), "--val", str(tmp_path / "val.h5"), "--no-progress"]
    assert main([*args, *[a for s in sets for a in ("--set", s)], "--out", str(tmp_path / "stream")]) == 0
    best = torch.load(tmp_path / "stream" / "best.pt", weights_only=False)
    assert best["data_attrs"]["transform"] == {"lmax": 2}
    assert len(_history(tmp_path / "stream")) == 2


def test_a_bad_data_setting_is_refused_by_name():
    with pytest.raises(ValueError, match="train.data: must be one of"):
        TrainConfig(data="disk")
    with pytest.raises(ValueError, match="train.stream_window: must be >= 1"):
        TrainConfig(stream_window=0)
