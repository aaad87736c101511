"""Shrec17 data: label files as the challenge ships them (CSV, gzip, the evaluator's zip), meshes
from folders and zips, sharded ray casting into HDF5, skipped meshes, the synthetic stand-in,
the CLI, retrieval metrics in `holovae evaluate` and the Shrec17 tables."""
from __future__ import annotations

import csv
import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trimesh")

from holovae.data.hdf5 import concatenate_datasets, read_dataset  # noqa: E402
from holovae.data.shrec17 import (MeshError, MeshSource, prepare_shrec17, read_shrec17_labels,  # noqa: E402
                                  shard_ids)
from holovae.data.synthetic_meshes import SYNTHETIC_CLASSES, write_synthetic_shrec17  # noqa: E402
from holovae.transforms.raycast import has_fast_rays  # noqa: E402

needs_embree = pytest.mark.skipif(not has_fast_rays(), reason="embreex not installed")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("shrec")
    paths = write_synthetic_shrec17(out, {"train": 2, "val": 1, "test": 1}, seed=0)
    return out, paths


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_synthetic_set_has_shrec_layout_and_is_deterministic(synthetic, tmp_path):
    out, paths = synthetic
    train = _rows(paths["train"])
    assert list(train[0]) == ["id", "synsetId", "subSynsetId", "modelId", "split"]
    assert len(train) == 2 * len(SYNTHETIC_CLASSES) and {r["split"] for r in train} == {"train"}
    assert all(r["modelId"].startswith("synthetic-") for r in train)
    ids = [r["id"] for rows in (train, _rows(paths["val"]), _rows(paths["test"])) for r in rows]
    assert len(set(ids)) == len(ids) and all(len(i) == 6 for i in ids)      # unique across splits
    assert {r["subSynsetId"] for r in train if r["synsetId"] == "box"} == {"cube", "slab"}
    assert sorted(p.stem for p in (out / "train_perturbed").glob("*.obj")) == sorted(r["id"] for r in train)
    assert "SYNTHETIC" in (out / "README.txt").read_text()
    again = write_synthetic_shrec17(tmp_path, {"train": 2, "val": 1, "test": 1}, seed=0)
    assert again["train"].read_bytes() == paths["train"].read_bytes()
    first = sorted((out / "train_perturbed").glob("*.obj"))[0]
    assert (tmp_path / "train_perturbed" / first.name).read_bytes() == first.read_bytes()
    with pytest.raises(ValueError, match="at least 1"):
        write_synthetic_shrec17(tmp_path / "x", {"train": 0})


def test_labels_from_csv_gzip_and_the_evaluator_zip(tmp_path):
    text = ("id,synsetId,subSynsetId,modelId,split\n"
            "2,02691156,02690373,abc,train\n"      # ids unpadded as in some CSVs
            "000005,03001627,,def,train\n"         # no finer sub-class: the class stands in
            "000007,02691156,02691156,ghi,test\n")
    plain = tmp_path / "all.csv"
    plain.write_text(text)
    labels = read_shrec17_labels([plain])
    assert labels.synset == {"000002": "02691156", "000005": "03001627", "000007": "02691156"}
    assert labels.subsynset["000005"] == "03001627" and labels.classes == ["02691156", "03001627"]
    assert labels.subclasses == ["02690373", "02691156", "03001627"]
    evaluator = tmp_path / "evaluator.zip"
    with zipfile.ZipFile(evaluator, "w") as z:
        z.writestr("evaluator/all.csv.gz", gzip.compress(text.encode()))
        z.writestr("evaluator/Evaluator.js", "// not labels")
    assert read_shrec17_labels([evaluator]) == labels
    gz = tmp_path / "test.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert read_shrec17_labels([gz]).synset == labels.synset


@pytest.mark.parametrize("content, message", [
    ("id,synset\n1,a\n", "missing column"),
    ("id,synsetId,subSynsetId,modelId,split\n", "no labelled rows"),
    ("id,synsetId,subSynsetId,modelId,split\n1,a,a,m,train\n1,b,b,m,train\n", "labelled b, earlier a"),
])
def test_bad_label_files_are_named(tmp_path, content, message):
    bad = tmp_path / "labels.csv"
    bad.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_shrec17_labels([bad])
    assert str(bad) in str(err.value)
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_shrec17_labels([tmp_path / "nowhere.csv"])


def test_mesh_source_reads_folders_and_zips_alike(synthetic, tmp_path):
    out, _ = synthetic
    folder = MeshSource(out / "test_perturbed")
    archive = tmp_path / "test_perturbed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((out / "test_perturbed").glob("*.obj")):
            z.write(p, f"test_perturbed/{p.name}")
    zipped = MeshSource(archive)
    assert folder.ids == zipped.ids and len(folder) == len(SYNTHETIC_CLASSES)
    a, b = folder.read(folder.ids[0]), zipped.read(folder.ids[0])
    np.testing.assert_array_equal(a.vertices, b.vertices)
    assert zipped.where(folder.ids[0]).startswith(f"{archive}::test_perturbed/")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        MeshSource(tmp_path / "missing")
    not_zip = tmp_path / "meshes.zip"
    not_zip.write_text("hello")
    with pytest.raises(MeshError, match="neither a folder of meshes nor a zip"):
        MeshSource(not_zip)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeshError, match="no mesh files"):
        MeshSource(tmp_path / "empty")


def test_shards_cover_every_id_once():
    ids = [f"{i:06d}" for i in range(11)]
    parts = [shard_ids(ids, k, 4) for k in range(4)]
    assert sum(parts, []) == ids and max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError, match="out of range"):
        shard_ids(ids, 4, 4)


@needs_embree
def test_prepare_writes_labelled_coefficients_and_shards_merge_to_the_whole(synthetic, tmp_path):
    out, paths = synthetic
    labels = read_shrec17_labels(list(paths.values()))
    kw = dict(bw=8, lmax=4, progress=False)
    whole, skipped = prepare_shrec17(out / "train_perturbed", labels, tmp_path / "train.h5", **kw)
    assert skipped == []
    d = read_dataset(whole)
    assert str(d.irreps) == "6x0e+6x1e+6x2e+6x3e+6x4e" and len(d) == 2 * len(SYNTHETIC_CLASSES)
    rows = {r["id"]: r for r in _rows(paths["train"])}
    assert [d.attrs["classes"][y] for y in d.labels] == [rows[i]["synsetId"] for i in d.ids]
    assert [d.attrs["subclasses"][s] for s in d.extra["sublabels"]] == [rows[i]["subSynsetId"] for i in d.ids]
    assert d.attrs["classes"] == sorted(SYNTHETIC_CLASSES) and d.attrs["dataset"] == "shrec17"
    assert d.attrs["standardization"] is None and d.attrs["n_files_ok"] == len(d)
    shards = [prepare_shrec17(out / "train_perturbed", labels, tmp_path / f"s{k}.h5", shard=k, shards=3, **kw)[0]
              for k in range(3)]
    merged = read_dataset(concatenate_datasets(shards, tmp_path / "merged.h5"))
    np.testing.assert_array_equal(merged.ids, d.ids)
    np.testing.assert_allclose(merged.coefficients, d.coefficients)
    assert merged.attrs["n_files"] == len(d)


@needs_embree
def test_unreadable_meshes_are_skipped_and_reported_until_too_many(synthetic, tmp_path):
    out, paths = synthetic
    folder = tmp_path / "meshes"
    folder.mkdir()
    for p in sorted((out / "val_perturbed").glob("*.obj")):
        (folder / p.name).write_bytes(p.read_bytes())
    broken = sorted(folder.glob("*.obj"))[0]
    broken.write_text("this is not a mesh\n")
    labels = read_shrec17_labels(list(paths.values()))
    path, skipped = prepare_shrec17(folder, labels, tmp_path / "val.h5", bw=8, lmax=2, progress=False,
                                    max_skipped_fraction=0.5)
    assert len(skipped) == 1 and str(broken) in skipped[0][0] and "no triangles" in skipped[0][1]
    assert len(read_dataset(path)) == len(SYNTHETIC_CLASSES) - 1
    with pytest.raises(ValueError, match="could not be used"):
        prepare_shrec17(folder, labels, tmp_path / "val2.h5", bw=8, lmax=2, progress=False)
    assert not (tmp_path / "val2.h5").exists()
    only_train = read_shrec17_labels([paths["train"]])
    with pytest.raises(ValueError, match="have no label"):
        prepare_shrec17(out / "val_perturbed", only_train, tmp_path / "val3.h5", bw=8, lmax=2, progress=False)


@needs_embree
def test_cli_prepares_a_split_from_a_zip_with_the_evaluator_labels(synthetic, tmp_path):
    from holovae.cli import main

    out, paths = synthetic
    archive = tmp_path / "test_perturbed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((out / "test_perturbed").glob("*.obj")):
            z.write(p, f"test_perturbed/{p.name}")
    evaluator = tmp_path / "evaluator.zip"
    with zipfile.ZipFile(evaluator, "w") as z:
        text = "".join(Path(p).read_text() if i == 0 else Path(p).read_text().split("\n", 1)[1]
                       for i, p in enumerate(paths.values()))
        z.writestr("evaluator/all.csv.gz", gzip.compress(text.encode()))
    h5, skipped = tmp_path / "test.h5", tmp_path / "test.skipped.tsv"
    assert main(["prepare-shrec17", "--meshes", str(archive), "--labels", str(evaluator), "--out", str(h5),
                 "--bw", "8", "--lmax", "3", "--skipped", str(skipped), "--no-progress"]) in (0, None)
    d = read_dataset(h5)
    assert len(d) == len(SYNTHETIC_CLASSES) and d.attrs["standardization"]["mean"][0] == 0.75
    assert skipped.read_text().splitlines() == ["file\treason"]


def test_retrieval_metrics_in_evaluate_compare_class_and_subclass_names():
    """The NDCG grades compare a model's sub-class with the query's class, so evaluate maps both
    index spaces to names first; a perfect classifier gives 1 everywhere except the graded NDCG."""
    from types import SimpleNamespace

    from holovae.evaluate.model import retrieval_metrics

    classes, subclasses = ["box", "torus"], ["cube", "slab", "torus"]
    y = np.array([0, 0, 1, 1])
    sub = np.array([0, 1, 2, 2])
    logits = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    lc = SimpleNamespace(test_logits=logits, classes=np.array([0, 1]))
    test = SimpleNamespace(attrs={"classes": classes, "subclasses": subclasses}, extra={"sublabels": sub})
    m = retrieval_metrics(lc, test, y)
    assert m["micro_precision"] == m["micro_recall"] == m["micro_map"] == 1.0
    # box queries: list [cube (grade 3 for the cube query), slab (1)]: DCG 3+1 = 4 vs ideal 4 -> 1;
    # the slab query: DCG 1 + 3 = 4 vs ideal 3 + 1 = 4 -> 1 too (ranks 1 and 2 weigh alike).
    # torus: sub-class = class -> grade 3 for both -> 1
    assert m["micro_ndcg"] == pytest.approx(1.0)
    # swapping the predicted classes changes nothing (the lists group the same models); one class
    # for everything retrieves all four for every query: precision 1/2, recall 1
    swapped = SimpleNamespace(test_logits=logits[:, ::-1], classes=np.array([0, 1]))
    assert retrieval_metrics(swapped, test, y)["micro_precision"] == 1.0
    lumped = SimpleNamespace(test_logits=np.c_[np.ones(4), np.zeros(4)], classes=np.array([0, 1]))
    m = retrieval_metrics(lumped, test, y)
    assert m["micro_precision"] == 0.5 and m["micro_recall"] == 1.0


def _shrec_eval(variant, model, **extra):
    ev = {"variant": variant, "dataset": "Shrec17", "split": "R/R", "model": model, "z": 40,
          "decoder": "equivariant", "tp": "efficient", "data": "SYNTHETIC", "bw": 16, "n_train": 180,
          "n_test": 90, "cosine_weighted": 0.3, "cosine": 0.2, "purity": 0.8, "v_measure": 0.7, "lc_acc": 0.9,
          "knn_acc": 0.85, "lmax": 14, "equiv_error_mean": 1e-7, "equiv_error_std": 1e-7, "abs_value_mean": 0.05,
          "abs_value_std": 0.01, "equiv_relative_error_max": 1e-5, "latent_invariance_error": 1e-7}
    for avg in ("micro", "macro"):
        for k in ("precision", "recall", "f1", "map", "ndcg"):
            ev[f"{avg}_{k}"] = 0.5 if avg == "micro" else 0.4
    ev.update(extra)
    return ev


def test_shrec_tables_put_the_paper_beside_ours_and_say_synthetic():
    from holovae.report.tables import build_table

    evals = [_shrec_eval("hae_z40", "H-AE"), _shrec_eval("hvae_z40", "H-VAE"),
             {"variant": "mnist", "dataset": "MNIST"}]          # other datasets' evals are skipped
    t1 = build_table("table1_shrec17", evals)
    assert [r["variant"] for r in t1.rows] == ["hae_z40", "hvae_z40"]
    hae = t1.rows[0]
    assert hae["p_at_n"] == 0.5 and hae["p_at_n_paper"] == 0.548 and hae["p_at_n_macro"] == 0.4
    assert hae["ndcg_paper"] == 0.597 and hae["lc_acc_paper"] == 0.654 and hae["cosine_paper"] == 0.130
    assert hae["cosine"] == 0.3 and hae["cosine_plain"] == 0.2 and hae["data"] == "SYNTHETIC"
    assert "SYNTHETIC" in t1.footer and "Every paper row" in t1.footer
    s4 = build_table("tableS4", evals).rows
    assert [(r["knn_acc"], r["knn_acc_paper"]) for r in s4] == [(0.85, 0.672), (0.85, 0.658)]
    s9 = build_table("tableS9_shrec17", evals).rows
    assert s9[1]["equiv_error_std_paper"] == 3.5 and s9[0]["equiv_relative_error_max"] == 1e-5
    only_ae = build_table("table1_shrec17", evals[:1])
    assert "Paper rows not run here: H-VAE z=40" in only_ae.footer
    broken = dict(evals[0])
    del broken["micro_ndcg"]
    with pytest.raises(ValueError, match="micro_ndcg"):
        build_table("table1_shrec17", [broken])

