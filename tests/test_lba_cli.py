"""`holovae prepare-lba`, `holovae lba-split`, `holovae lba-regress` on a dozen shared complexes.

Runs on ``../shared/data/lba`` and ``../shared/data/pdb/posebusters_raw_mmcif`` (skipped when
absent). Transforms are small (L = 2) and the random forest uses the small grid, for speed.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from holovae.cli import main
from holovae.data.lba import featurize_complexes, find_complexes, read_lba_dataset, read_pdbbind_index
from holovae.evaluate.regression import METRICS, regression_metrics

SHARED = Path(__file__).resolve().parents[2] / "shared"
LBA = SHARED / "data" / "lba"
COMPLEXES = LBA / "complexes"
STRUCTURES = SHARED / "data" / "pdb" / "posebusters_raw_mmcif"
pytestmark = pytest.mark.skipif(not COMPLEXES.is_dir() or not STRUCTURES.is_dir(),
                                reason=f"{LBA} or {STRUCTURES} not available")

# Small proteins; 1nlo and 1nlp share their protein (one cluster); 3kwa has a pocket file only
# (skipped by prepare-lba, excluded by lba-split).
IDS = ("1k9q", "1imx", "1nlo", "1nlp", "4yef", "2w9r", "2l1r", "3tws", "4cwb", "2gj5", "3q6z", "2p3a", "3kwa")
USABLE = tuple(sorted(set(IDS) - {"3kwa"}))
EXPLICIT = {"lmax": 2, "n_max": 6}      # the explicit transform: differs from the model's in n_max
MODEL = {"lmax": 2, "n_max": 4}
SEEDS = (0, 1)
REGRESSORS = ("linear", "random_forest", "mean")


def _cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lba_cli")
    (tmp / "ids.txt").write_text("\n".join(IDS) + "\n")
    return tmp


@pytest.fixture(scope="module")
def explicit(work):
    """prepare-lba with an explicit transform: (data file, skipped TSV)."""
    out, skipped = work / "explicit.h5", work / "explicit_skipped.tsv"
    assert _cli("prepare-lba", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--out", out, "--skipped", skipped,
                "--lmax", EXPLICIT["lmax"], "--n-max", EXPLICIT["n_max"], "--threads", 1, "--no-progress") == 0
    return out, skipped


@pytest.fixture(scope="module")
def model(work):
    """A tiny protein-neighbourhood model (L=2, n_max=4) trained for one epoch on two structures."""
    files = sorted(STRUCTURES.glob("*.cif.gz"), key=lambda p: p.stat().st_size)[:2]
    assert _cli("prepare-structures", *files, "--out", work / "structures.h5", "--lmax", MODEL["lmax"],
                "--n-max", MODEL["n_max"], "--secondary", "none", "--no-progress") == 0
    assert _cli("train", "--train", work / "structures.h5", "--val", work / "structures.h5", "--out", work / "m",
                "--set", "model.latent_dim=4", "--set", "model.channels=[4,4]", "--set", "model.degrees=[2,1]",
                "--set", "model.initial_channels=4", "--set", "train.epochs=1", "--set", "train.batch_size=64",
                "--set", "train.device=cpu", "--no-progress") == 0
    return work / "m" / "best.pt"


@pytest.fixture(scope="module")
def from_model(work, model):
    """prepare-lba with the model's transform."""
    out = work / "from_model.h5"
    assert _cli("prepare-lba", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--out", out,
                "--skipped", work / "from_model_skipped.tsv", "--model", model, "--no-progress") == 0
    return out


@pytest.fixture(scope="module")
def cv_split(work):
    out = work / "cv.json"
    assert _cli("lba-split", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--out", out, "--folds", 3,
                "--method", "align", "--val-fraction", 0.2) == 0
    return out


# ------------------------------------------------------------------------------------------------
# prepare-lba
# ------------------------------------------------------------------------------------------------
def test_prepare_lba_matches_featurize(explicit):
    out, skipped = explicit
    data = read_lba_dataset(out)
    wanted = [c for c in find_complexes(COMPLEXES) if c.pdb_id in IDS]
    direct = featurize_complexes(wanted, read_pdbbind_index(COMPLEXES / "manifest.csv"), **EXPLICIT)
    assert data.complex_ids.tolist() == list(USABLE) == direct.complex_ids.tolist()
    np.testing.assert_array_equal(data.n_pocket, direct.n_pocket)
    np.testing.assert_array_equal(data.complex_index, direct.complex_index)
    assert data.ids == direct.ids
    np.testing.assert_allclose(data.coefficients, direct.coefficients, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(data.affinity, direct.affinity)
    assert data.attrs["lmax"] == 2 and data.attrs["n_max"] == 6
    rows = list(csv.reader(skipped.open(), delimiter="\t"))
    assert rows[0] == ["complex", "reason"] and [r[0] for r in rows[1:]] == ["3kwa"]
    assert "no protein file" in rows[1][1]


def test_prepare_lba_takes_the_models_transform(from_model, model, work, caplog):
    data = read_lba_dataset(from_model)
    assert (data.attrs["lmax"], data.attrs["n_max"]) == (MODEL["lmax"], MODEL["n_max"])
    assert data.attrs["model"] == str(model) and data.complex_ids.tolist() == list(USABLE)
    common = ["prepare-lba", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--skipped", work / "x.tsv",
              "--model", model, "--no-progress"]
    # an option that agrees with the model is fine; one that contradicts it is an error naming both values
    assert _cli(*common, "--out", work / "agree.h5", "--max-complexes", 2, "--lmax", MODEL["lmax"]) == 0
    assert len(read_lba_dataset(work / "agree.h5").complex_ids) == 2
    caplog.clear()
    assert _cli(*common, "--out", work / "conflict.h5", "--lmax", 3) == 1
    assert "--lmax 3 (the model's data has 2)" in caplog.text and str(model) in caplog.text
    assert not (work / "conflict.h5").exists()


def _explicit_other_options(model_path) -> list:
    """The options the workflow (workflow/rules/lba.smk, before `--model --other-channel`) built
    from the model file for the "other element" baseline: the model's transform spelled out."""
    import torch

    attrs = torch.load(model_path, map_location="cpu", weights_only=False)["data_attrs"]
    return ["--lmax", attrs["lmax"], "--n-max", attrs["n_max"], "--r-max", attrs["r_max"],
            "--elements", ",".join(attrs["elements"]), "--other-channel",
            "--normalization", attrs["normalization"] or "none", "--radial", attrs["radial"]]


def test_prepare_lba_model_plus_other_channel(model, work):
    """`--model M --other-channel` is M's transform plus the "other element" channel: the same
    file as the explicit options, and one channel more than M's own data."""
    common = ["prepare-lba", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--max-complexes", 3,
              "--no-progress"]
    assert _cli(*common, "--model", model, "--other-channel", "--out", work / "other_model.h5",
                "--skipped", work / "other_model.tsv") == 0
    assert _cli(*common, *_explicit_other_options(model), "--out", work / "other_explicit.h5",
                "--skipped", work / "other_explicit.tsv") == 0
    a, b = read_lba_dataset(work / "other_model.h5"), read_lba_dataset(work / "other_explicit.h5")
    assert a.attrs.pop("model") == str(model) and "model" not in b.attrs
    assert a.attrs == b.attrs
    assert a.attrs["other_channel"] is True and a.attrs["n_channels"] == 5 and a.attrs["elements"] == list("CNOS")
    assert (a.attrs["lmax"], a.attrs["n_max"]) == (MODEL["lmax"], MODEL["n_max"])
    np.testing.assert_array_equal(a.coefficients, b.coefficients)
    assert a.ids == b.ids and a.complex_ids.tolist() == b.complex_ids.tolist() == list(USABLE[:3])
    assert (work / "other_model.tsv").read_text() == (work / "other_explicit.tsv").read_text()


# ------------------------------------------------------------------------------------------------
# lba-split
# ------------------------------------------------------------------------------------------------
def test_lba_split_cv_keeps_clusters_whole(cv_split):
    split = json.loads(cv_split.read_text())
    assert split["kind"] == "cv" and split["source"] == "sequence-identity" and len(split["folds"]) == 3
    assert split["method"] == "align" and split["min_identity"] == 0.3
    assert list(split["excluded"]) == ["3kwa"]
    clusters = split["clusters"]
    assert sorted(clusters) == list(USABLE) and clusters["1nlo"] == clusters["1nlp"]
    tests = [i for fold in split["folds"] for i in fold["test"]]
    assert sorted(tests) == list(USABLE)                       # every complex in exactly one test fold
    test_fold_of_cluster = {}
    for k, fold in enumerate(split["folds"]):
        sets = [set(fold[s]) for s in ("train", "val", "test")]
        assert all(sets) and set.union(*sets) == set(USABLE) and sum(map(len, sets)) == len(USABLE)
        for i in fold["test"]:
            assert test_fold_of_cluster.setdefault(clusters[i], k) == k     # a cluster in one test fold only
    assert "3 cross-validation folds" in split["caption"] and "12 complexes" in split["caption"]
    assert split["max_cross_identity"] is None or split["max_cross_identity"] < 0.3


def test_lba_split_from_lists(work):
    lists = work / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("1k9q\n1imx\n1nlo\n1nlp\n4yef\n2w9r\n")
    (lists / "val.txt").write_text("2l1r\n3tws\n")
    (lists / "test.txt").write_text("4cwb\n2gj5\n9xyz\n")       # 9xyz: not among the complexes
    assert _cli("lba-split", "--complexes", COMPLEXES, "--out", work / "lists.json", "--lists", lists) == 0
    split = json.loads((work / "lists.json").read_text())
    assert split["kind"] == "fixed" and split["source"] == "atom3d-lists" and split["clusters"] is None
    assert split["folds"] == [{"train": ["1imx", "1k9q", "1nlo", "1nlp", "2w9r", "4yef"], "val": ["2l1r", "3tws"],
                               "test": ["2gj5", "4cwb"]}]
    assert list(split["excluded"]) == ["9xyz"]


# ------------------------------------------------------------------------------------------------
# lba-regress
# ------------------------------------------------------------------------------------------------
def _predictions(path) -> dict:
    """``{(regressor, seed): (measured, predicted)}`` from a predictions CSV, in file order."""
    out: dict = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["complex_id", "fold", "seed", "regressor", "measured", "predicted"]
        for row in reader:
            m, p = out.setdefault((row["regressor"], int(row["seed"])), ([], []))
            m.append(float(row["measured"]))
            p.append(float(row["predicted"]))
    return out


def _same(a, b) -> bool:
    return (a is None and math.isnan(b)) or (a is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12))


@pytest.mark.parametrize("features", ["zernike_inv", "hae"])
def test_lba_regress_writes_metrics_of_its_predictions(features, explicit, from_model, model, cv_split, work):
    data, extra = (explicit[0], []) if features == "zernike_inv" else (from_model, ["--model", model])
    out, predictions = work / f"{features}.json", work / f"{features}.csv"
    assert _cli("lba-regress", "--data", data, "--split", cv_split, "--features", features, *extra,
                "--regressors", *REGRESSORS, "--seeds", *SEEDS, "--rf-grid", "small", "--threads", 1,
                "--out", out, "--predictions", predictions, "--meta", "variant=test", "--meta", "z=4") == 0
    res = json.loads(out.read_text())
    assert res["features"] == features and res["n_complexes"] == len(USABLE) and res["n_folds"] == 3
    assert res["split_kind"] == "cv" and res["split_caption"] and res["variant"] == "test" and res["z"] == 4
    assert res["feature_dim"] == (4 if features == "hae" else 4 * 4)   # z, or 4 channels x (n_max 6: 4 l=0 orders)
    assert sorted(res["results"]) == sorted(REGRESSORS)
    pred = _predictions(predictions)
    for regressor, r in res["results"].items():
        assert [s["seed"] for s in r["per_seed"]] == list(SEEDS)
        for s in r["per_seed"]:
            measured, predicted = pred[(regressor, s["seed"])]
            assert len(measured) == len(USABLE)
            recomputed = regression_metrics(measured, predicted)
            assert all(_same(s[m], recomputed[m]) for m in METRICS), (regressor, s, recomputed)
        rmsd = [s["rmsd"] for s in r["per_seed"]]
        assert _same(r["rmsd"], float(np.mean(rmsd))) and _same(r["rmsd_std"], float(np.std(rmsd, ddof=1)))
        if regressor != "mean":       # distinct seeds give distinct fits
            assert pred[(regressor, 0)][1] != pred[(regressor, 1)][1], regressor
    assert len(res["results"]["random_forest"]["rf_params"]) == len(SEEDS) * 3
    assert res["protocol"] == "paper" and res["pocket"]["rule"] == "ca" and res["pocket"]["cutoff"] == 10.0
    assert res["pocket"]["protocol"] == "paper"


@pytest.mark.slow   # fits 10 forests per seed: ~13 s
def test_lba_regress_authors_protocol(explicit, cv_split, work):
    """``--protocol authors``: the bagged forest (its chosen point scored on 5 forests), recorded
    in the output; the paper protocol's forest predicts otherwise."""
    common = ["--data", explicit[0], "--split", cv_split, "--features", "zernike_inv", "--regressors",
              "random_forest", "mean", "--seeds", 0, "--rf-grid", "small", "--threads", 1]
    runs = {}
    for protocol in ("paper", "authors"):
        out, predictions = work / f"protocol_{protocol}.json", work / f"protocol_{protocol}.csv"
        assert _cli("lba-regress", *common, "--protocol", protocol, "--out", out, "--predictions", predictions) == 0
        runs[protocol] = (json.loads(out.read_text()), _predictions(predictions))
    res, pred = runs["authors"]
    assert res["protocol"] == "authors" and res["pocket"]["protocol"] == "paper"
    assert all(set(e) == {"seed", "fold", "params", "val_rmse"} for e in res["results"]["random_forest"]["rf_params"])
    assert pred[("random_forest", 0)][1] != runs["paper"][1][("random_forest", 0)][1]
    assert pred[("mean", 0)] == runs["paper"][1][("mean", 0)]       # the mean predictor is the same in both


def test_prepare_lba_authors_protocol_takes_atom3ds_pocket(explicit, work):
    """``--protocol authors`` on complex folders: residues with any heavy atom within 6 Å (fewer
    than the paper's Cα within 10 Å), recorded in the file's attributes."""
    out = work / "authors_pockets.h5"
    assert _cli("prepare-lba", "--complexes", COMPLEXES, "--ids", work / "ids.txt", "--out", out,
                "--skipped", work / "authors_skipped.tsv", "--lmax", EXPLICIT["lmax"], "--n-max", EXPLICIT["n_max"],
                "--protocol", "authors", "--threads", 1, "--no-progress") == 0
    authors, paper = read_lba_dataset(out), read_lba_dataset(explicit[0])
    assert authors.attrs["pocket_rule"] == "any_atom" and authors.attrs["pocket_cutoff"] == 6.0
    assert paper.attrs["pocket_rule"] == "ca" and paper.attrs["pocket_cutoff"] == 10.0
    assert authors.complex_ids.tolist() == paper.complex_ids.tolist()
    assert (authors.n_pocket < paper.n_pocket).all()


def test_lba_regress_drops_complexes_skipped_at_preparation(explicit, cv_split, work):
    split = json.loads(cv_split.read_text())
    split["folds"][0]["test"].append("3kwa")                    # skipped by prepare-lba (no protein file)
    (work / "with_skipped.json").write_text(json.dumps(split))
    assert _cli("lba-regress", "--data", explicit[0], "--split", work / "with_skipped.json",
                "--features", "zernike_inv", "--regressors", "mean", "--seeds", 0, "--out", work / "d.json") == 0
    res = json.loads((work / "d.json").read_text())
    assert res["n_dropped"] == 1 and "3kwa" in res["dropped"] and res["n_complexes"] == len(USABLE)


def test_lba_regress_rejects_bad_inputs(explicit, cv_split, model, work, caplog):
    data = explicit[0]
    common = ["--regressors", "mean", "--seeds", 0, "--out", work / "bad.json"]
    split = json.loads(cv_split.read_text())
    split["folds"][1]["train"].append("9zzz")                   # never prepared
    (work / "foreign.json").write_text(json.dumps(split))
    cases = [
        (["--data", data, "--split", work / "foreign.json", "--features", "zernike_inv"], ["foreign.json", "9zzz"]),
        (["--data", data, "--split", cv_split, "--features", "hae"], ["needs --model"]),
        (["--data", work / "structures.h5", "--split", cv_split, "--features", "zernike_inv"],
         ["structures.h5", "not an LBA"]),
        (["--data", data, "--split", cv_split, "--features", "hae", "--model", model], ["explicit.h5", "n_max"]),
        (["--data", data, "--split", cv_split, "--features", "zernike_inv", "--seeds", 1, 1], ["distinct"]),
    ]
    for args, words in cases:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="holovae"):
            assert _cli("lba-regress", *common, *args) == 1, args
        assert all(w in caplog.text for w in words), (args, caplog.text)
    assert not (work / "bad.json").exists()

