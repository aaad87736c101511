"""Reproduced-vs-paper tables (holovae.report) and the `holovae table` command, on synthetic evals."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from holovae.cli import main
from holovae.report import (build_table, load_eval, table1_mnist, tableS1, tableS3, tableS8_mnist,
                            tableS9_mnist, write_table)
from holovae.report.evals import check_eval
from holovae.report.paper import load_paper, paper_files
from holovae.report.tables import tableS2, tableS7, tableS9_proteins

SHARED = Path(__file__).resolve().parents[2] / "shared" / "paper"   # ../shared beside the repo
PACKAGED = Path(__file__).resolve().parents[1] / "holovae" / "report" / "paper"
NAMES = ["table1_mnist", "tableS1", "tableS3", "tableS8_mnist", "tableS9_mnist", "tableS2", "tableS7",
         "tableS9_proteins"]


def make_eval(variant="hae_nr_z16", split="NR/R", model="H-AE", z=16, decoder="equivariant",
              tp="efficient", channels=(16,) * 6, degrees=(10, 10, 8, 4, 2, 1), spe=10.0, **over):
    """An eval dict with every key `holovae evaluate` writes (bw left out: it may be absent)."""
    ev = {"variant": variant, "dataset": "MNIST", "split": split, "model": model, "z": z,
          "decoder": decoder, "tp": tp, "channels": list(channels), "degrees": list(degrees),
          "params": 226_817, "lmax": 10, "n_train": 4000, "n_test": 1000, "seconds_per_epoch": spe,
          "epochs": 3, "mse": 1e-3, "cosine": 0.031, "cosine_weighted": 0.027, "purity": 0.6,
          "v_measure": 0.5, "lc_acc": 0.8, "knn_acc": 0.85, "equiv_error_mean": 2.3e-7,
          "equiv_error_std": 2.7e-7, "abs_value_mean": 1.0e-2, "abs_value_std": 9.0e-3,
          "equiv_relative_error_max": 4.2e-6, "latent_invariance_error": 1.1e-6}
    ev.update(over)
    return ev


def make_protein_eval(variant="prot_l6_z64", lmax=6, z=64, model="H-AE", channels=(50, 50, 50, 64, 64, 64),
                      degrees=(6, 6, 6, 4, 2, 1), **over):
    """A protein-neighbourhood eval: no split (nor decoder/tp, data_dim, initial_channels: may be absent)."""
    ev = {"variant": variant, "dataset": "Protein NBs", "model": model, "z": z, "lmax": lmax,
          "channels": list(channels), "degrees": list(degrees), "params": 1_612_345, "n_train": 5000,
          "n_test": 800, "seconds_per_epoch": 120.0, "epochs": 6, "mse": 2e-3, "cosine": 0.35,
          "cosine_weighted": 0.3, "purity": 0.2, "v_measure": 0.1, "lc_acc": 0.3, "knn_acc": 0.25,
          "equiv_error_mean": 3.1e-7, "equiv_error_std": 2.0e-7, "abs_value_mean": 2.0e-2,
          "abs_value_std": 1.0e-2, "equiv_relative_error_max": 5.0e-6, "equiv_relative_error_mean": 1.0e-6,
          "latent_invariance_error": 2.0e-6}
    ev.update(over)
    return ev


def protein_evals():
    return [
        make_protein_eval(initial_channels=44, data_dim=1708, decoder="equivariant", tp="efficient"),
        make_protein_eval("prot_l3_z128", lmax=3, z=128, degrees=(3, 3, 3, 3, 2, 1), n_train=4000),
        make_protein_eval("prot_vae_l6_z64", model="H-VAE"),  # the paper's protein models are H-AEs
        make_protein_eval("prot_l5_z64", lmax=5),             # no paper row
    ]


@pytest.fixture
def evals():
    return [
        make_eval(),
        make_eval("hvae_nr_z16", model="H-VAE", spe=11.0),
        make_eval("hae_rr_z120", split="R/R", z=120),
        make_eval("hae_nr_z32", z=32),  # no paper row
        make_eval("hae_mlp", decoder="mlp", spe=13.0),
        make_eval("hvae_mlp", model="H-VAE", decoder="mlp", spe=14.0),
        make_eval("hae_full5", tp="full", channels=(7, 6, 6, 6, 16), degrees=(10, 8, 4, 2, 1), spe=11.0),
        make_eval("hae_full6", tp="full", channels=(5, 5, 5, 5, 7, 16), spe=17.0),
        make_eval("other", dataset="Shrec17"),  # not MNIST: in no table here
    ] + protein_evals()


def by_variant(rows):
    return {r["variant"]: r for r in rows}


def test_table1_matches_paper_rows(evals):
    rows = by_variant(table1_mnist(evals))
    # only main models (equivariant decoder, ETP) of MNIST; paper order, then unmatched
    assert list(rows) == ["hae_rr_z120", "hae_nr_z16", "hvae_nr_z16", "hae_nr_z32"]
    r = rows["hae_nr_z16"]
    assert r["knn_acc_paper"] == 0.862 and r["cosine_paper"] == 0.025 and r["purity_paper"] == 0.62
    assert r["cosine"] == 0.027 and r["cosine_plain"] == 0.031  # cosine is ours weighted
    assert r["bw"] is None
    assert rows["hae_rr_z120"]["lc_acc_paper"] == 0.881
    assert rows["hvae_nr_z16"]["v_measure_paper"] == 0.54
    assert all(rows["hae_nr_z32"][f"{m}_paper"] is None for m in ("cosine", "knn_acc"))
    t = build_table("table1_mnist", evals)
    assert "H-AE NR/R z=120" in t.footer and "H-AE NR/R z=16;" not in t.footer


def test_tableS3_is_knn_column(evals):
    rows = tableS3(evals)
    assert set(rows[0]) == {"variant", "split", "model", "z", "knn_acc", "knn_acc_paper"}
    assert by_variant(rows)["hae_nr_z16"]["knn_acc_paper"] == 0.862


def test_tableS1_relative_time(evals):
    rows = by_variant(tableS1(evals))
    assert set(rows) == {"hae_nr_z16", "hvae_nr_z16", "hae_mlp", "hvae_mlp"}
    assert rows["hae_nr_z16"]["relative_time"] == 1.0
    assert rows["hae_mlp"]["relative_time"] == pytest.approx(1.3)
    assert rows["hvae_mlp"]["relative_time"] == pytest.approx(1.4)
    assert rows["hae_mlp"]["model"] == "H-AE unconstrained decoder"
    assert rows["hae_mlp"]["relative_time_paper"] == 1.3 and rows["hae_mlp"]["knn_acc_paper"] == 0.856
    assert rows["hvae_mlp"]["cosine_paper"] == 0.057


def test_tableS1_without_reference_leaves_time_empty(evals):
    t = build_table("tableS1", [e for e in evals if e["variant"] != "hae_nr_z16"])
    assert all(r["relative_time"] is None for r in t.rows)
    assert "no equivariant-decoder H-AE" in t.footer and "H-AE NR/R z=16" in t.footer


def test_tableS8_matches_tp_and_lists(evals):
    rows = by_variant(tableS8_mnist(evals))
    assert list(rows) == ["hae_nr_z16", "hae_full5", "hae_full6"]  # H-AE NR/R z16, equivariant decoder
    assert rows["hae_nr_z16"]["params_paper"] == "227k" and rows["hae_nr_z16"]["params"] == 226_817
    assert rows["hae_full5"]["tp_type"] == "Full-TP" and rows["hae_full5"]["cosine_paper"] == 0.044
    assert rows["hae_full6"]["relative_time"] == pytest.approx(1.7)
    assert rows["hae_full6"]["relative_time_paper"] == 1.7
    assert rows["hae_full6"]["channels"] == "[5,5,5,5,7,16]"


def test_tableS9_paper_values_and_format(evals, tmp_path):
    t = build_table("tableS9_mnist", evals)
    rows = by_variant(t.rows)
    assert rows["hae_nr_z16"]["equiv_error_mean_paper"] == 2.3
    assert rows["hvae_nr_z16"]["abs_value_std_paper"] == 1.8
    assert rows["hae_mlp"]["equiv_error_mean_paper"] is None  # the paper's models only
    assert "equiv_relative_error_max" in rows["hae_mlp"]
    csv_path, md_path = tmp_path / "s9.csv", tmp_path / "s9.md"
    write_table(t.rows, csv_path, md_path, t.spec.title, t.spec.caption, columns=t.spec.columns,
                footer=t.footer, labels=t.spec.labels)
    back = by_variant(list(csv.DictReader(csv_path.open())))
    assert back["hae_nr_z16"]["equiv_error_mean"] == "2.3e-07"
    assert back["hae_nr_z16"]["equiv_error_mean_paper"] == "2.3"
    assert "units lost in transcription; compare orders of magnitude" in md_path.read_text()


@pytest.mark.parametrize("name", NAMES)
def test_csv_round_trip_and_markdown_rows(name, evals, tmp_path):
    t = build_table(name, evals)
    assert t.rows
    csv_path, md_path = tmp_path / f"{name}.csv", tmp_path / f"{name}.md"
    write_table(t.rows, csv_path, md_path, t.spec.title, t.spec.caption, columns=t.spec.columns,
                footer=t.footer, labels=t.spec.labels)
    with csv_path.open() as f:
        back = list(csv.DictReader(f))
    assert [r["variant"] for r in back] == [r["variant"] for r in t.rows]
    assert list(back[0]) == list(t.spec.columns)
    md = md_path.read_text()
    assert md.startswith(f"# {t.spec.title}\n") and "from our run" in md
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(t.rows)  # header + separator + rows
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_float_formatting(tmp_path):
    rows = [{"a": 0.0123456, "b": 2, "c": None, "d": 1234.56}]
    write_table(rows, tmp_path / "t.csv", tmp_path / "t.md", "T", "caption")
    assert (tmp_path / "t.csv").read_text() == "a,b,c,d\n0.0123,2,,1235\n"


def test_unknown_table_name(evals):
    with pytest.raises(ValueError, match="unknown table 'table7'.*table1_mnist"):
        build_table("table7", evals)


def test_missing_key_names_it(evals):
    del evals[1]["knn_acc"]
    with pytest.raises(ValueError, match="hvae_nr_z16.*'knn_acc'"):
        tableS3(evals)


def test_bad_value_is_an_error(evals):
    evals[0]["tp"] = "fast"
    with pytest.raises(ValueError, match="tp='fast'"):
        table1_mnist(evals)


def test_cli(evals, tmp_path, caplog):
    paths = []
    for ev in evals:
        p = tmp_path / f"{ev['variant']}.json"
        p.write_text(json.dumps(ev))
        paths.append(str(p))
    out = tmp_path / "tables" / "tableS1.csv"
    assert main(["table", "tableS1", "--eval", *paths, "--out", str(out)]) == 0
    assert len(list(csv.DictReader(out.open()))) == 4
    assert out.with_suffix(".md").exists()
    assert main(["table", "nope", "--eval", *paths, "--out", str(out)]) == 1
    assert "unknown table 'nope'" in caplog.text
    bad = json.loads(Path(paths[0]).read_text())
    del bad["seconds_per_epoch"]
    Path(paths[0]).write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"hae_nr_z16\.json.*'seconds_per_epoch'"):
        load_eval(paths[0], ("seconds_per_epoch",), "tableS1")
    assert main(["table", "tableS1", "--eval", *paths, "--out", str(out)]) == 1


def test_paper_data_packaged():
    assert "table1_mnist.csv" in paper_files() and len(paper_files()) >= 9
    assert load_paper("table1_mnist.csv")[2]["knn_acc"] == 0.862


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no transcription folder {SHARED} here")
def test_packaged_paper_csvs_identical_to_transcription():
    shared = sorted(p.name for p in SHARED.glob("*.csv"))
    assert shared and shared == sorted(p.name for p in PACKAGED.glob("*.csv"))
    for name in shared:
        assert (PACKAGED / name).read_bytes() == (SHARED / name).read_bytes(), name


# ---------------------------------------------------------------- protein neighbourhoods

def test_tableS7_matches_lmax_and_z(evals):
    t = build_table("tableS7", evals)
    rows = by_variant(t.rows)
    # protein evals only, in the paper's row order, then the unmatched ones
    assert list(rows) == ["prot_l6_z64", "prot_l3_z128", "prot_vae_l6_z64", "prot_l5_z64"]
    r = rows["prot_l6_z64"]
    assert r["cosine_paper"] == 0.219 and r["params_paper"] == "1.6M" and r["params"] == 1_612_345
    assert r["cosine"] == 0.3 and r["cosine_plain"] == 0.35           # ours weighted, as the paper's
    assert r["n_train"] == 5000 and r["epochs"] == 6 and (r["lmax"], r["z"]) == (6, 64)
    assert r["train_hours"] == pytest.approx(0.2) and r["train_hours_paper"] == 5.9
    assert rows["prot_l3_z128"]["cosine_paper"] == 0.053 and rows["prot_l3_z128"]["params_paper"] == "1.2M"
    assert rows["prot_vae_l6_z64"]["cosine_paper"] is None and rows["prot_l5_z64"]["cosine_paper"] is None
    assert "10,957" in t.spec.caption and "12 epochs" in t.spec.caption and "CASP12" in t.spec.caption
    assert "n_train" in t.spec.caption
    assert "4,000 to 5,000 neighbourhoods" in t.footer
    assert "H-AE L=3 z=64" in t.footer and "H-AE L=6 z=64;" not in t.footer
    assert tableS7(evals) == t.rows


def test_tableS2_architectures(evals):
    rows = by_variant(tableS2(evals))
    r = rows["prot_l6_z64"]
    assert r["channels"] == r["channels_paper"] == "[50,50,50,64,64,64]"
    assert r["degrees"] == r["degrees_paper"] == "[6,6,6,4,2,1]"
    assert r["initial_channels"] == 44 and r["initial_channels_paper"] == 44
    assert r["params_paper"] == "1.6M" and r["tensor_size"] == 1708 and r["tensor_size_paper"] == 1708
    other = rows["prot_l3_z128"]  # no initial_channels / data_dim in its eval: empty cells
    assert other["initial_channels"] is None and other["tensor_size"] is None
    assert other["tensor_size_paper"] == 616 and other["channels_paper"] == "[60,60,60,90,128,128]"
    assert "no data_dim" in build_table("tableS2", evals).footer


def test_tableS9_proteins_paper_values_and_format(evals, tmp_path):
    t = build_table("tableS9_proteins", evals)
    rows = by_variant(t.rows)
    assert set(rows) == {"prot_l6_z64", "prot_l3_z128", "prot_vae_l6_z64", "prot_l5_z64"}
    assert rows["prot_l6_z64"]["equiv_error_mean_paper"] == 0.9
    assert rows["prot_l3_z128"]["abs_value_std_paper"] == 3.0
    assert rows["prot_vae_l6_z64"]["equiv_error_mean_paper"] is None
    assert tableS9_proteins(evals) == t.rows
    csv_path, md_path = tmp_path / "s9p.csv", tmp_path / "s9p.md"
    write_table(t.rows, csv_path, md_path, t.spec.title, t.spec.caption, columns=t.spec.columns,
                footer=t.footer, labels=t.spec.labels)
    back = by_variant(list(csv.DictReader(csv_path.open())))
    assert back["prot_l6_z64"]["equiv_error_mean"] == "3.1e-07"
    assert back["prot_l6_z64"]["equiv_relative_error_mean"] == "1.0e-06"
    assert back["prot_l6_z64"]["equiv_error_mean_paper"] == "0.9"
    md = md_path.read_text()
    assert "equiv_error_mean_paper †" in md and "units lost in transcription" in md


def test_protein_evals_need_no_split():
    ev = make_protein_eval()
    check_eval(ev, ("variant", "dataset", "split", "model", "z"), "ev", "t")  # no split: fine
    with pytest.raises(ValueError, match="split='NR/NR'"):
        check_eval(make_eval(split="NR/NR"), ("split",), "ev", "t")
    mnist = make_eval()
    del mnist["split"]
    with pytest.raises(ValueError, match="missing key.*'split'"):
        check_eval(mnist, ("split",), "ev", "t")


def test_mnist_tables_skip_protein_evals_and_vice_versa(evals):
    assert all(r["variant"].startswith("h") for r in table1_mnist(evals))
    assert {r["variant"] for r in tableS9_mnist(evals)}.isdisjoint(v["variant"] for v in protein_evals())
    assert not tableS7([make_eval()])  # an MNIST eval is in no protein table


def test_protein_missing_key_is_an_error(evals):
    del by_variant(evals)["prot_l6_z64"]["cosine_weighted"]
    with pytest.raises(ValueError, match="prot_l6_z64.*'cosine_weighted'"):
        tableS7(evals)


def test_cli_protein_table(evals, tmp_path):
    paths = []
    for ev in evals:
        p = tmp_path / f"{ev['variant']}.json"
        p.write_text(json.dumps(ev))
        paths.append(str(p))
    out = tmp_path / "tableS7.csv"
    assert main(["table", "tableS7", "--eval", *paths, "--out", str(out)]) == 0
    back = by_variant(list(csv.DictReader(out.open())))
    assert set(back) == {e["variant"] for e in protein_evals()}
    assert back["prot_l6_z64"]["params_paper"] == "1.6M" and back["prot_l6_z64"]["cosine_paper"] == "0.219"
    assert "CASP12" in out.with_suffix(".md").read_text()
    # the MNIST tables skip the protein evals (which have no split) instead of failing
    assert main(["table", "table1_mnist", "--eval", *paths, "--out", str(tmp_path / "t1.csv")]) == 0


def _lba_eval(variant, features, rmsd):
    res = {reg: {"rmsd": rmsd + k, "rmsd_std": 0.1, "pearson": 0.5 - k, "pearson_std": 0.05,
                 "spearman": 0.4, "spearman_std": 0.05, "kendall": 0.3, "kendall_std": 0.04}
           for k, reg in enumerate(("random_forest", "linear", "mean"))}
    res["random_forest"]["rf_params"] = [{"seed": s, "fold": 0, "params": {"n_estimators": 64 if s else 32}}
                                         for s in range(3)]
    return {"variant": variant, "dataset": "LBA", "features": features, "results": res, "n_complexes": 70,
            "seeds": [0, 1, 2], "split_caption": "Split at 30% identity into 5 folds."}


def test_lba_tables_have_our_rows_and_say_the_paper_values_are_missing():
    from holovae.report.tables import build_table

    evals = [_lba_eval("zernike_inv_other", "zernike_inv", 2.0), _lba_eval("hae", "hae", 1.5),
             _lba_eval("zernike_inv", "zernike_inv", 1.8)]
    t2 = build_table("table2_lba", evals)
    assert [(r["features"], r["regressor"]) for r in t2.rows] == [
        ("hae", "random forest"), ("hae", "linear"), ("hae", "mean of training affinities")]
    assert t2.rows[0]["rmsd"] == 1.5 and t2.rows[0]["rf_params"].endswith("(2/3 fits)")
    assert "did not survive transcription" in t2.footer and "30% identity" in t2.footer
    assert "Every paper row" not in t2.footer
    s10 = build_table("tableS10_lba", evals)
    names = [(r["features"], r["regressor"]) for r in s10.rows]
    # feature kinds in a fixed order, each with linear and forest; the mean predictor once
    assert names == [("hae", "linear"), ("hae", "random forest"), ("(none)", "mean of training affinities"),
                     ("zernike_inv", "linear"), ("zernike_inv", "random forest"),
                     ("zernike_inv_other", "linear"), ("zernike_inv_other", "random forest")]
    assert "other element" in s10.footer
    # the protocol (and where the differences are listed) and the sampling error are in both footers
    for table in (t2, s10):
        assert "Protocol: unrecorded" in table.footer and "docs/fidelity.md#lba" in table.footer
        assert "1/√(n − 2) (0.12 at n = 70)" in table.footer


def test_lba_tables_name_the_protocol_and_the_pocket():
    from holovae.report.tables import build_table

    ev = _lba_eval("hae", "hae", 1.5)
    ev.update(protocol="authors", split_kind="fixed", n_test=[490],
              pocket={"rule": "listed", "cutoff": 6.0, "protocol": "authors", "text": "ATOM3D's 6 Å pocket"})
    footer = build_table("table2_lba", [ev]).footer
    assert "Protocol: authors. Pocket: ATOM3D's 6 Å pocket. Regressors: the authors' released code" in footer
    assert "mean of 10 forests" in footer and "(0.05 at n = 490)" in footer
    assert "mean predictor's correlations" not in footer          # a fixed split: no fold means
    ev.update(protocol="authors", pocket={"rule": "ca", "cutoff": 10.0, "protocol": "paper", "text": "Cα"})
    assert "Protocol: authors (paper pocket)." in build_table("table2_lba", [ev]).footer


def test_every_table_names_its_dataset_and_reads_only_its_evals():
    """The registry says which dataset each table belongs to (the workflow asks it), and a
    table reads the evals of that dataset only (their ``dataset`` as `holovae evaluate --meta` writes it)."""
    from holovae.report.tables import TABLES, table_datasets

    expected = {"mnist": {"table1_mnist", "tableS3", "tableS1", "tableS8_mnist", "tableS9_mnist"},
                "proteins": {"tableS2", "tableS7", "tableS9_proteins"},
                "aminoacids": {"tableS5", "tableS6", "tableS9_aminoacids"},
                "lba": {"table2_lba", "tableS10_lba"},
                "shrec17": {"table1_shrec17", "tableS4", "tableS9_shrec17"}}
    assert table_datasets() == {t: d for d, tables in expected.items() for t in tables}
    meta = {"mnist": "MNIST", "proteins": "Protein NBs", "aminoacids": "Amino acids", "lba": "LBA",
            "shrec17": "Shrec17"}
    for name, spec in TABLES.items():
        assert [d for d, m in meta.items() if spec.applies({"dataset": m})] == [spec.dataset], name


def test_the_table_registry_imports_without_torch_or_numpy():
    """The workflow reads the registry when it builds its graph: no torch, no numpy."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = sys.modules['numpy'] = None; "
            "from holovae.report.tables.registry import table_datasets; print(len(table_datasets()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "16"


def test_the_config_schema_lets_each_dataset_list_exactly_its_tables():
    """The workflow builds a table from the evals of the config section that lists it; the schema
    allows a section only the tables whose spec names that dataset."""
    import yaml

    from holovae.report.tables import table_datasets

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "schemas" /
                             "config.schema.yaml").read_text())
    allowed = {name: set(sec["properties"]["tables"]["items"]["enum"]) for name, sec in schema["properties"].items()
               if isinstance(sec, dict) and "tables" in sec.get("properties", {})}
    by_dataset: dict = {}
    for table, dataset in table_datasets().items():
        by_dataset.setdefault(dataset, set()).add(table)
    assert allowed == by_dataset
