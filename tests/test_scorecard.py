"""The reproduction scorecard: verdicts against stated tolerances, on hand-made tables."""
import csv

import pytest

from holovae.report.scorecard import TOLERANCES, parse_cell, render_scorecard, score_table


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_paper_cells_with_suffixes_are_numbers():
    assert parse_cell("227k") == 227_000 and parse_cell("1.6M") == 1_600_000
    assert parse_cell("[16,16]") == "[16,16]" and parse_cell("") is None and parse_cell("0.5") == 0.5


@pytest.mark.parametrize("metric,ours,paper,std,ok", [
    ("lc_acc", 0.90, 0.92, None, True),          # |0.02| <= 0.03
    ("lc_acc", 0.85, 0.92, None, False),         # |0.07| > 0.03
    ("lc_acc", 0.85, 0.92, 0.04, True),          # widened to 2 sd = 0.08
    ("cosine", 0.030, 0.025, None, True),        # 20% of 0.025 = 0.005 >= 0.005
    ("cosine", 0.032, 0.025, None, False),
    ("cosine", 0.004, 0.001, None, True),        # floor 0.005
    ("params", 226_691, 227_000, None, True),    # 0.14% < 0.5%
    ("params", 218_951, 227_000, None, False),   # 3.5%
    ("equiv_error_mean", 3e-7, 1e-6, None, True),   # half a decade
    ("equiv_error_mean", 3e-9, 1e-6, None, False),  # 2.5 decades
    ("channels", "[16, 16]", "[16,16]", None, True),
    ("channels", "[16, 32]", "[16,16]", None, False),
])
def test_verdicts_follow_the_stated_tolerances(metric, ours, paper, std, ok):
    assert TOLERANCES[metric].passes(ours, paper, std) is ok


def test_scorecard_page_scores_every_paired_number(tmp_path):
    t1 = _write(tmp_path / "table1_mnist.csv", [
        {"variant": "hae", "split": "NR/R", "model": "H-AE", "z": 16, "n_train": 2700, "cosine": 0.030,
         "cosine_paper": 0.025, "lc_acc": 0.70, "lc_acc_paper": 0.90, "knn_acc": 0.8, "knn_acc_paper": ""},
    ])
    t2 = _write(tmp_path / "tableS7.csv", [
        {"variant": "L3", "model": "H-AE", "params": 630576, "params_paper": "631k", "train_hours": 0.1,
         "train_hours_paper": 3.0},
    ])
    entries = score_table("table1_mnist", [{k: parse_cell(str(v)) for k, v in r.items()} for r in csv.DictReader(open(t1))])
    assert [(e["metric"], e["ok"]) for e in entries] == [("cosine", True), ("lc_acc", False)]   # knn: no paper value
    page = render_scorecard([t1, t2], {"mnist": "embedded demo"})
    assert "**2 of 3 numbers within tolerance.**" in page        # timings are not scored
    assert "| table1_mnist | 1 / 2 |" in page and "| tableS7 | 1 / 1 |" in page
    assert "2,700 training samples" in page and "embedded demo" in page
    assert "[evaluation](docs/fidelity.md#evaluation)" in page


def test_scorecard_cli(tmp_path):
    from holovae.cli import main

    t = _write(tmp_path / "tableS3.csv", [{"variant": "a", "knn_acc": 0.5, "knn_acc_paper": 0.51}])
    out = tmp_path / "r" / "reproduction.md"
    assert main(["scorecard", "--tables", str(t), "--source", "mnist=demo", "--out", str(out)]) == 0
    assert "**1 of 1 numbers within tolerance.**" in out.read_text()
    assert main(["scorecard", "--tables", str(tmp_path / "nope.csv"), "--out", str(out)]) == 1
