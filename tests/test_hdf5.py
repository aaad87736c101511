"""holovae.data.hdf5: round trip, atomic writes, and every error path."""
import json
import os

import h5py
import numpy as np
import pytest
import torch

import holovae
from holovae.data.hdf5 import DatasetFormatError, read_dataset, read_irreps, write_dataset

IRREPS = "2x0e+1x1e+1x2e"  # dim 10


def _data(n=7, seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, 10)).astype(np.float32)


def test_round_trip(tmp_path):
    x = _data()
    path = tmp_path / "sub" / "d.h5"
    attrs = {"bw": 30, "seed": np.int64(3), "projection": {"point": [0, 0, 2.001]}, "source": {"a.gz": "abc"}}
    rot = np.random.default_rng(1).normal(size=(7, 3, 3))
    write_dataset(path, torch.from_numpy(x), IRREPS, labels=np.arange(7), ids=[f"s{i}" for i in range(7)],
                  attrs=attrs, extra={"rotations": rot})
    d = read_dataset(path, expected_irreps="1x0e+1x0e+1x1e+1x2e")  # same layout, different spelling
    assert isinstance(d.coefficients, torch.Tensor) and d.coefficients.dtype == torch.float32
    assert torch.equal(d.coefficients, torch.from_numpy(x))
    assert str(d.irreps) == IRREPS and str(read_irreps(path)) == IRREPS
    assert d.labels.tolist() == list(range(7))
    assert d.ids.tolist() == [f"s{i}" for i in range(7)]
    np.testing.assert_array_equal(d.extra["rotations"], rot)
    assert d.attrs["bw"] == 30 and d.attrs["projection"] == {"point": [0, 0, 2.001]}
    assert d.attrs["source"] == {"a.gz": "abc"} and d.attrs["seed"] == 3
    assert d.attrs["holovae_version"] == holovae.__version__
    assert len(d) == 7
    with h5py.File(path) as f:  # plain HDF5 for other tools: attrs are JSON strings
        assert f.attrs["irreps"] == IRREPS and json.loads(f.attrs["json:bw"]) == 30
    assert [p.name for p in path.parent.iterdir()] == ["d.h5"]  # no temporary left behind


def test_optional_fields_and_empty(tmp_path):
    write_dataset(tmp_path / "a.h5", _data(3), IRREPS)
    d = read_dataset(tmp_path / "a.h5")
    assert d.labels is None and d.ids is None and d.extra == {}
    write_dataset(tmp_path / "e.h5", np.zeros((0, 10), np.float32), IRREPS, labels=np.zeros(0))
    assert read_dataset(tmp_path / "e.h5").coefficients.shape == (0, 10)


def test_row_blocks_are_written_in_order(tmp_path):
    # blocks that end inside HDF5 chunks (1 MB / 40 bytes per row: 6553 rows per chunk)
    x = _data(20000, seed=4)
    cuts = [0, 1, 6000, 6600, 6601, 13300, 20000]
    blocks = [x[a:b] for a, b in zip(cuts[:-1], cuts[1:])] + [x[:0]]
    write_dataset(tmp_path / "b.h5", blocks, IRREPS, labels=np.arange(20000))
    d = read_dataset(tmp_path / "b.h5")
    assert torch.equal(d.coefficients, torch.from_numpy(x)) and d.labels.tolist() == list(range(20000))
    write_dataset(tmp_path / "one.h5", [torch.from_numpy(x[:5].astype(np.float64))], IRREPS)
    assert torch.equal(read_dataset(tmp_path / "one.h5").coefficients, torch.from_numpy(x[:5]))
    bad = x.copy()
    bad[6700, 2] = np.nan                                          # row 6700 is in the fourth block
    with pytest.raises(ValueError, match=r"non-finite.*first rows \[6700\]"):
        write_dataset(tmp_path / "c.h5", [bad[a:b] for a, b in zip(cuts[:-1], cuts[1:])], IRREPS)
    with pytest.raises(ValueError, match=r"a block of shape \(3, 9\)"):
        write_dataset(tmp_path / "c.h5", [x[:2], x[:3, :9]], IRREPS)
    with pytest.raises(ValueError, match="labels"):
        write_dataset(tmp_path / "c.h5", [x[:2], x[2:5]], IRREPS, labels=np.arange(4))
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_refuses_non_finite_and_leaves_no_file(tmp_path, bad):
    x = _data()
    x[3, 4] = bad
    with pytest.raises(ValueError, match="non-finite.*first rows \\[3\\]"):
        write_dataset(tmp_path / "d.h5", x, IRREPS)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    write_dataset(path, _data(seed=0), IRREPS)
    # An exception after the temporary file is open and partly written ...
    real = h5py.Group.create_dataset

    def failing(self, name, *a, **k):
        if name == "labels":
            raise RuntimeError("disk full")
        return real(self, name, *a, **k)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(path, _data(seed=1), IRREPS, labels=np.arange(7))
    monkeypatch.undo()
    # ... leaves the previous file intact and no temporary behind.
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]
    np.testing.assert_array_equal(read_dataset(path).coefficients.numpy(), _data(seed=0))


def test_keyboard_interrupt_cleans_up(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "d.h5", _data(), IRREPS)
    assert list(tmp_path.iterdir()) == []


def test_write_argument_errors(tmp_path):
    p = tmp_path / "d.h5"
    with pytest.raises(ValueError, match=r"\[N, 10\]"):
        write_dataset(p, np.zeros((3, 9)), IRREPS)
    with pytest.raises(ValueError, match="'labels'.*first dim 7"):
        write_dataset(p, _data(), IRREPS, labels=np.arange(6))
    with pytest.raises(ValueError, match="reserved"):
        write_dataset(p, _data(), IRREPS, extra={"ids": np.arange(7)})
    with pytest.raises(ValueError, match="reserved"):
        write_dataset(p, _data(), IRREPS, attrs={"irreps": "1x0e"})
    with pytest.raises(ValueError, match="JSON"):
        write_dataset(p, _data(), IRREPS, attrs={"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_dataset(tmp_path / "nope.h5")


def test_read_not_hdf5(tmp_path):
    p = tmp_path / "text.h5"
    p.write_text("hello")
    with pytest.raises(DatasetFormatError, match="text.h5: not an HDF5 file"):
        read_dataset(p)
    with pytest.raises(DatasetFormatError, match="not an HDF5 file"):
        read_irreps(p)


def test_read_irreps_mismatch_names_both(tmp_path):
    p = tmp_path / "d.h5"
    write_dataset(p, _data(), IRREPS)
    with pytest.raises(DatasetFormatError, match=r"d.h5: irreps mismatch: file has 2x0e\+1x1e\+1x2e, expected 1x0e\+3x1e"):
        read_dataset(p, expected_irreps="1x0e+3x1e")


def _raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return path


def test_read_missing_dataset_and_attribute(tmp_path):
    p = _raw(tmp_path / "noirreps.h5", coefficients=np.zeros((2, 10)))
    with pytest.raises(DatasetFormatError, match="noirreps.h5: missing attribute 'irreps'"):
        read_dataset(p)
    p = _raw(tmp_path / "nocoef.h5", labels=np.zeros(2))
    with h5py.File(p, "a") as f:
        f.attrs["irreps"] = IRREPS
    with pytest.raises(DatasetFormatError, match="nocoef.h5: missing dataset 'coefficients'"):
        read_dataset(p)
    with h5py.File(p, "a") as f:
        f.attrs["irreps"] = "not irreps"
    with pytest.raises(DatasetFormatError, match="not a valid irreps"):
        read_dataset(p)


def test_read_wrong_shapes(tmp_path):
    p = _raw(tmp_path / "shape.h5", coefficients=np.zeros((2, 9)))
    with h5py.File(p, "a") as f:
        f.attrs["irreps"] = IRREPS
    with pytest.raises(DatasetFormatError, match=r"shape.h5: dataset 'coefficients' has shape \(2, 9\), expected \[N, 10\]"):
        read_dataset(p)
    p = _raw(tmp_path / "labels.h5", coefficients=np.zeros((2, 10)), labels=np.zeros(3))
    with h5py.File(p, "a") as f:
        f.attrs["irreps"] = IRREPS
    with pytest.raises(DatasetFormatError, match="labels.h5: dataset 'labels' has shape"):
        read_dataset(p)


def test_concatenate_datasets_merges_rows_and_bookkeeping(tmp_path):
    from holovae.data.hdf5 import concatenate_datasets
    irreps = "2x0e+1x1e"
    a = write_dataset(tmp_path / "a.h5", np.ones((3, 5)), irreps, labels=[0, 1, 2], ids=["a0", "a1", "a2"],
                      attrs={"lmax": 1, "n_max": 20, "n_channels": 4, "source_sha256": {"x.cif": "1"}, "n_files": 1},
                      extra={"secondary_structure": np.array(["H", "E", "L"], dtype=object)})
    b = write_dataset(tmp_path / "b.h5", 2 * np.ones((2, 5)), irreps, labels=[3, 4], ids=["b0", "b1"],
                      attrs={"lmax": 1, "n_max": 20, "n_channels": 4, "source_sha256": {"y.cif": "2"}, "n_files": 2},
                      extra={"secondary_structure": np.array(["L", "L"], dtype=object)})
    out = read_dataset(concatenate_datasets([a, b], tmp_path / "ab.h5"))
    assert out.coefficients.shape == (5, 5) and out.coefficients[3:].eq(2).all()
    assert out.labels.tolist() == [0, 1, 2, 3, 4] and out.ids.tolist() == ["a0", "a1", "a2", "b0", "b1"]
    assert out.extra["secondary_structure"].tolist() == ["H", "E", "L", "L", "L"]
    assert out.attrs["source_sha256"] == {"x.cif": "1", "y.cif": "2"} and out.attrs["n_files"] == 3
    # transform parameters are not counts: a merge of two shards keeps n_max = 20, not 40
    assert out.attrs["n_max"] == 20 and out.attrs["n_channels"] == 4


def test_concatenate_datasets_refuses_mismatches(tmp_path):
    from holovae.data.hdf5 import DatasetFormatError, concatenate_datasets
    a = write_dataset(tmp_path / "a.h5", np.ones((1, 4)), "1x0e+1x1e", attrs={"lmax": 1})
    b = write_dataset(tmp_path / "b.h5", np.ones((1, 2)), "2x0e", attrs={"lmax": 1})
    c = write_dataset(tmp_path / "c.h5", np.ones((1, 4)), "1x0e+1x1e", attrs={"lmax": 2})
    with pytest.raises(DatasetFormatError, match="b.h5.*irreps"):
        concatenate_datasets([a, b], tmp_path / "x.h5")
    with pytest.raises(DatasetFormatError, match="c.h5.*lmax"):
        concatenate_datasets([a, c], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_truncated_file_is_named_not_a_traceback(tmp_path):
    p = write_dataset(tmp_path / "whole.h5", np.random.default_rng(0).normal(size=(400, 10)), IRREPS)
    data = p.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match=r"cut.h5: cannot (open|read) the HDF5 file, truncated or corrupt"):
        read_dataset(cut)
    from holovae.cli import main   # the commands report it as an error (exit 1), not a traceback
    assert main(["merge", str(cut), str(p), "--out", str(tmp_path / "m.h5")]) == 1
    assert main(["train", "--train", str(cut), "--val", str(p), "--out", str(tmp_path / "model"),
                 "--set", "model.latent_dim=2", "--set", "model.channels=[2]", "--set", "model.degrees=[1]"]) == 1


@pytest.mark.parametrize("values,kind", [(np.array([["a"] * 10] * 2, dtype=object), "object|string|str"),
                                         (np.zeros((2, 10), dtype=np.int64), "int64")])
def test_non_float_coefficients_are_refused(tmp_path, values, kind):
    p = tmp_path / "kind.h5"
    with h5py.File(p, "w") as f:
        f.attrs["irreps"] = IRREPS
        if values.dtype == object:
            f.create_dataset("coefficients", data=values, dtype=h5py.string_dtype())
        else:
            f.create_dataset("coefficients", data=values)
    with pytest.raises(DatasetFormatError, match=rf"kind.h5: dataset 'coefficients' has dtype ({kind})"):
        read_dataset(p)


def test_non_finite_coefficients_in_a_foreign_file_are_named(tmp_path):
    x = np.zeros((4, 10), dtype=np.float32)
    x[2, 3] = np.nan
    p = _raw(tmp_path / "nan.h5", coefficients=x)
    with h5py.File(p, "a") as f:
        f.attrs["irreps"] = IRREPS
    with pytest.raises(DatasetFormatError, match=r"nan.h5: 1 NaN/inf coefficients in 1 rows \(first rows \[2\]\)"):
        read_dataset(p)


def test_merging_the_same_shard_twice_is_refused(tmp_path):
    from holovae.data.hdf5 import concatenate_datasets
    a = write_dataset(tmp_path / "a.h5", np.ones((2, 4)), "1x0e+1x1e", ids=["x", "y"])
    copy = tmp_path / "copy.h5"
    copy.write_bytes(a.read_bytes())
    with pytest.raises(ValueError, match="given twice"):
        concatenate_datasets([a, tmp_path / "." / "a.h5"], tmp_path / "m.h5")
    with pytest.raises(DatasetFormatError, match=r"2 row ids repeat across the inputs, e.g. 'x' in .*a.h5, .*copy.h5"):
        concatenate_datasets([a, copy], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()
