"""The Snakemake workflow: dry runs of both configs, schema errors, and a tiny real run."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
pytestmark = pytest.mark.skipif(not Path(SNAKEMAKE).exists(), reason="snakemake is not installed (pip install -e '.[test]')")


def local_env(**extra: str) -> dict:
    """The environment of a local snakemake run: this interpreter's scripts first on PATH (the
    rules call `holovae`, even without an activated venv), and Slurm's `scontrol` replaced by one
    that fails at once (tests/no_slurm/scontrol says why)."""
    path = os.pathsep.join((str(Path(sys.executable).parent), str(REPO / "tests" / "no_slurm"), os.environ.get("PATH", "")))
    return dict(os.environ, PATH=path, **extra)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=local_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run -> {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    counts = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def stage_counts(output: str, results: str = "results") -> dict[tuple[str, str], int]:
    """The jobs of a dry run by (rule, dataset): the dataset is the folder under the results
    root of a job's first output (``results/<dataset>/...``; the tables, figures and the
    scorecard under their own folders)."""
    import re

    counts: dict = {}
    rule = None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"^\s+output: (\S+?),?(?:\s|$)", line)
        if m and rule and rule != "all":
            parts = Path(m.group(1)).parts
            root = len(Path(results).parts)
            key = (rule, parts[root] if len(parts) > root else "")
            counts[key] = counts.get(key, 0) + 1
            rule = None
    return counts


def write_config(path: Path, base: str = "config/config.yaml", **changes) -> Path:
    cfg = yaml.safe_load((REPO / base).read_text())
    for key, value in changes.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_default(tmp_path):
    out = snakemake(tmp_path, "-n", "all", "--cores", "2", "--configfile", str(REPO / "config/config.yaml")).stdout
    counts, jobs = job_counts(out), stage_counts(out)
    # one rule per stage, over every dataset
    assert jobs[("train", "mnist")] == 4 and counts["prepare_mnist"] == 2
    assert jobs[("train", "proteins")] == 1 and jobs[("merge", "proteins")] == 3     # train, val, test
    assert jobs[("embed", "mnist")] == 4 * 3 and jobs[("embed", "aminoacids")] == 3  # amino acids: test only
    assert counts["table"] == 5 + 3 + 3 + 2 + 3                   # MNIST, proteins, amino acids, LBA, Shrec17
    # Shrec17 on synthetic meshes: 2 training shards, H-AE and H-VAE
    assert counts["synthetic_shrec17"] == 1 and counts["raycast_shrec17_shard"] == 4
    assert jobs[("train", "shrec17")] == 2 and jobs[("evaluate", "shrec17")] == 2
    # LBA: H-AE, Zernike invariants and the "other element" variant on one split
    assert counts["lba_regress"] == 3 and counts["lba_split"] == 1 and counts["prepare_lba"] == 2
    # amino acids: the untrained model, H-AE and H-VAE at 400 residues; one test set, one val set
    assert jobs[("train", "aminoacids")] == 3 and counts["subset_aminoacids_eval"] == 2
    assert counts["figure"] == 11 and counts["scorecard"] == 1
    assert "download" not in counts and "proteinnet_structures" not in counts   # the default is offline
    # one rule per stage: the four trained datasets share train, embed, evaluate and figure
    for stage in ("train", "embed", "evaluate", "figure", "merge"):
        assert not [rule for rule in counts if rule.startswith(stage) and rule != stage], counts


def test_dry_run_paper_resolves_every_mnist_variant(tmp_path):
    out = snakemake(tmp_path, "-n", "all", "--cores", "8", "--configfile", str(REPO / "config/paper.yaml")).stdout
    counts, jobs = job_counts(out), stage_counts(out, "results/paper")
    # {H-AE, H-VAE} x z {16, 120} x {NR, R} + 2 unconstrained decoders + 2 Full-TP models
    assert jobs[("train", "mnist")] == 12 and jobs[("download", "download")] >= 4
    assert jobs[("embed", "mnist")] == 12 * 3 and jobs[("evaluate", "mnist")] == 12
    assert counts["table"] == 5 + 3 + 3 + 2 + 3
    # MNIST 4 files, SHREC'17 6 (3 mesh archives, 2 label CSVs, the evaluator), ATOM3D 1, ProteinNet 1
    assert counts["download"] == 4 + 6 + 1 + 1
    assert counts["raycast_shrec17_shard"] == 180 + 26 + 52
    assert jobs[("train", "shrec17")] == 2 and "synthetic_shrec17" not in counts
    # ATOM3D LBA: downloaded and extracted, its own split; the pockets embedded by the authors'
    # published encoder (proteins.pretrained), imported instead of trained
    assert counts["extract_atom3d_lba"] == 1 and counts["prepare_lba"] == 2
    assert counts["import_pretrained"] == 1
    # ProteinNet first: the protein jobs are known once its checkpoint has run
    assert counts["proteinnet_structures"] == 1
    assert jobs[("train", "proteins")] == 12             # Table S2: L {3, 4, 6, 8} x z {64, 128, 256}
    # Table S5: 3 models x 6 sizes, Table S6: 3 more betas at 20,000; 3 repeats each
    assert jobs[("train", "aminoacids")] == (3 * 6 + 3) * 3


@pytest.mark.slow   # two snakemake dry runs in subprocesses: ~9 s
def test_dry_run_needs_neither_torch_nor_holovae(tmp_path):
    """`snakemake -n` on a login node: the DAG is built from paths and config alone."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'holovae', 'e3nn', 'h5py'):\n"
        "            raise ImportError(f'{name} is blocked: the DAG must not need it')\n"
        "sys.meta_path.insert(0, _Block())\n")
    env = local_env(PYTHONPATH=str(blocker))
    for cfg in ("config/config.yaml", "config/paper.yaml"):
        proc = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                               "-n", "all", "--cores", "2", "--configfile", str(REPO / cfg)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# each case starts snakemake (~2.5 s): the fast tier keeps an unknown key and a figure of a
# variant that is not trained; the other kinds of violation run in the full suite
_SLOW = pytest.mark.slow


@pytest.mark.parametrize("change, expected", [
    ({"mnist.epochs_typo": 3}, "epochs_typo"),
    pytest.param({"mnist.bw": "thirty"}, "thirty", marks=_SLOW),
    pytest.param({"mnist.train": {"epochs": 0}}, "epochs", marks=_SLOW),
    pytest.param({"mnist.variants": {"x": {"architecture": "etp_z16", "vae": False, "train_split": "sideways"}}},
                 "sideways", marks=_SLOW),
    pytest.param({"shrec17.source": "internet"}, "internet", marks=_SLOW),
    pytest.param({"shrec17.shards": {"train": 2, "tset": 1}}, "tset", marks=_SLOW),
    # a figure of a variant that the config no longer trains
    ({"proteins.variants": {"hae_L2": {"architecture": "L3_z64", "lmax": 2}}}, "umap_variant: 'hae_L3_z64'"),
])
def test_schema_rejects_bad_config(tmp_path, change, expected):
    cfg = write_config(tmp_path / "bad.yaml", **change)
    proc = snakemake(tmp_path, "-n", "all", "--cores", "1", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert expected in message, message[-3000:]


TINY = {
    "results": "results",
    "threads": 1,
    "evaluate.equivariance_samples": 40,
    "mnist.n_train": 200,
    "mnist.n_test": 100,
    "mnist.train": {"epochs": 2, "batch_size": 20, "lr": 0.003, "lambda_x": 50, "lambda_kl": 0.2,
                    "no_kl_epochs": 1, "warmup_kl_epochs": 1},
    "mnist.architectures": {"small": {"latent_dim": 16, "channels": [4, 4, 4, 4, 4], "degrees": [10, 8, 4, 2, 1]},
                            "small_mlp": {"latent_dim": 16, "channels": [4, 4, 4, 4, 4], "degrees": [10, 8, 4, 2, 1],
                                          "decoder": "mlp", "mlp_hidden": [32]}},
    "mnist.variants": {"hae_z16_NR": {"architecture": "small", "vae": False, "train_split": "NR"},
                       "hvae_z16_NR": {"architecture": "small", "vae": True, "train_split": "NR"},
                       "hae_z16_NR_mlp": {"architecture": "small_mlp", "vae": False, "train_split": "NR"}},
    "proteins.max_structures": 3,
    "proteins.shard_size": 1,
    "proteins.train": {"epochs": 1, "batch_size": 32, "lr": 0.001, "lambda_x": 1000, "no_kl_epochs": 1,
                       "warmup_kl_epochs": 1},
    "proteins.architectures": {"tiny": {"latent_dim": 8, "channels": [8, 8, 8], "degrees": [3, 2, 1],
                                        "initial_channels": 8}},
    "proteins.variants": {"hae_L3_z8": {"architecture": "tiny", "lmax": 3}},
    "proteins.figures": {"umap_variant": "hae_L3_z8"},
    "aminoacids.max_structures": 3,
    "aminoacids.n_val": 60,
    "aminoacids.n_test": 150,
    "aminoacids.cv_folds": 3,
    "aminoacids.train": {"epochs": 1, "lr": 0.001, "lambda_x": 1000, "no_kl_epochs": 1, "warmup_kl_epochs": 0},
    "aminoacids.architecture": {"latent_dim": 2, "channels": [8, 8, 8], "degrees": [4, 2, 1], "initial_channels": 8},
    "aminoacids.size_ablation": {"models": ["hae"], "sizes": [{"n": 0, "batch_size": 10}, {"n": 40, "batch_size": 10}]},
    "aminoacids.beta_ablation": {"models": ["hae", "hvae_b0.1"], "n_train": 40, "batch_size": 10},
    "aminoacids.figures": {"latent_run": "hae_n40_r0"},
    "lba.protein_variant": "hae_L3_z8",
    "lba.seeds": [0, 1],
    "lba.split": {"method": "auto", "min_identity": 0.3, "folds": 3, "seed": 0, "val_fraction": 0.15},
    "shrec17.synthetic": {"train": 2, "val": 1, "test": 2, "stretch": 0.2, "jitter": 0.01, "seed": 0},
    "shrec17.bw": 8,
    "shrec17.lmax": 4,
    "shrec17.shards": {"train": 2, "val": 1, "test": 1},
    "shrec17.train": {"epochs": 1, "batch_size": 4, "lr": 0.002, "lambda_x": 50, "lambda_kl": 0.2,
                      "no_kl_epochs": 1, "warmup_kl_epochs": 0},
    "shrec17.architectures": {"tiny": {"latent_dim": 8, "channels": [6, 6, 6], "degrees": [4, 2, 1],
                                       "initial_channels": 6}},
    "shrec17.variants": {"hae_z8": {"architecture": "tiny", "vae": False},
                         "hvae_z8": {"architecture": "tiny", "vae": True}},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    # 24 of the embedded complexes: the sequence split of all 70 alone takes ~40 s
    ids = sorted(p.name for p in (REPO / "holovae/data/embedded/lba").iterdir() if p.is_dir())[:24]
    (work / "lba_ids.txt").write_text("\n".join(ids) + "\n")
    cfg = write_config(work / "tiny.yaml", **TINY, **{"lba.ids": str(work / "lba_ids.txt")})
    snakemake(work, "all", "--cores", "2", "--configfile", str(cfg))
    return work, cfg


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_run_tables(tiny_run):
    work, _ = tiny_run
    tables = work / "results" / "tables"
    t1 = read_csv(tables / "table1_mnist.csv")
    assert {r["variant"] for r in t1} == {"hae_z16_NR", "hvae_z16_NR"}     # the MLP decoder is Table S1's
    for row in t1:
        for col in ("purity", "v_measure", "lc_acc", "knn_acc"):
            assert 0.0 <= float(row[col]) <= 1.0
        assert 0.0 <= float(row["cosine"]) <= 2.0
        assert row["knn_acc_paper"] != ""                                # the paper's number beside ours
    s1 = read_csv(tables / "tableS1.csv")
    assert any("unconstrained" in r["model"] for r in s1)
    s9 = read_csv(tables / "tableS9_mnist.csv")
    assert all(float(r["equiv_relative_error_max"]) < 1e-3 for r in s9)
    for name in ("table1_mnist", "tableS1", "tableS3", "tableS8_mnist", "tableS9_mnist"):
        assert (tables / f"{name}.md").read_text().startswith("# ")
    ev = json.loads((work / "results/mnist/eval/hae_z16_NR.json").read_text())
    assert ev["n_train"] == 180 and ev["n_test"] == 100
    for fig in ("fig2_canonical_hae_z16_NR", "fig2_umap_hae_z16_NR", "fig2_prior_samples_hvae_z16_NR",
                "fig2_interpolations_hvae_z16_NR", "fig3_overlays_hae_z16_NR"):
        assert (work / "results/figures" / f"{fig}.png").stat().st_size > 1000
    s7 = read_csv(tables / "tableS7.csv")
    assert [r["variant"] for r in s7] == ["hae_L3_z8"] and 0.0 <= float(s7[0]["cosine"]) <= 2.0
    s2 = read_csv(tables / "tableS2.csv")
    assert s2[0]["tensor_size"] == "616"            # 44x0e+40x1e+40x2e+36x3e at L = 3, n_max = 20
    assert (work / "results/figures/fig4B_umap_hae_L3_z8.png").stat().st_size > 1000
    skipped = (work / "results/proteins/data/L3/train.skipped.tsv").read_text().splitlines()
    assert skipped[0].split("\t")[:2] == ["file", "chain"]
    s5 = read_csv(tables / "tableS5.csv")
    assert [(r["model"], r["n_train"]) for r in s5] == [("H-AE", "0"), ("H-AE", "40")]
    assert s5[1]["knn_acc_paper"] == "" and s5[0]["knn_acc_paper"] == "0.629"   # the paper has n = 0, not 40
    for row in s5:
        assert 0.0 <= float(row["lc_acc"]) <= 1.0 and 0.0 <= float(row["knn_acc"]) <= 1.0
    s6 = read_csv(tables / "tableS6.csv")
    assert [(r["model"], float(r["beta"])) for r in s6] == [("H-AE", 0.0), ("H-VAE", 0.1)]
    assert s6[1]["cosine_paper"] == "0.047"
    ev = json.loads((work / "results/aminoacids/eval/hae_n0_r0.json").read_text())
    assert ev["epochs"] == 0 and ev["classifier_protocol"] == "3-fold CV on test" and ev["z"] == 2
    assert all(float(r["equiv_relative_error_max"]) < 1e-3 for r in read_csv(tables / "tableS9_aminoacids.csv"))
    assert (work / "results/figures/fig4A_latent_hae_n40_r0.png").stat().st_size > 1000
    t2 = read_csv(tables / "table2_lba.csv")
    assert [r["regressor"] for r in t2] == ["random forest", "linear", "mean of training affinities"]
    assert all(r["n_complexes"] == "24" and r["seeds"] == "2" for r in t2)
    s10 = read_csv(tables / "tableS10_lba.csv")
    assert {r["features"] for r in s10} == {"hae", "zernike_inv", "zernike_inv_other", "(none)"}
    assert "30% protein sequence identity" in (tables / "table2_lba.md").read_text()
    assert (work / "results/figures/fig4D_lba_hae.png").stat().st_size > 1000
    assert (work / "results/logs/train/mnist/hae_z16_NR.log").exists()
    assert (work / "results/benchmarks/train/mnist/hae_z16_NR.tsv").exists()
    t1s = read_csv(tables / "table1_shrec17.csv")
    assert [(r["variant"], r["data"], r["n_train"], r["n_test"]) for r in t1s] == [
        ("hae_z8", "SYNTHETIC", "12", "12"), ("hvae_z8", "SYNTHETIC", "12", "12")]
    for row in t1s:
        for col in ("purity", "lc_acc", "p_at_n", "r_at_n", "f1_at_n", "map", "ndcg", "ndcg_macro"):
            assert 0.0 <= float(row[col]) <= 1.0
        assert row["p_at_n_paper"] == ""              # z = 8 is not the paper's z = 40 model
    assert "SYNTHETIC" in (tables / "table1_shrec17.md").read_text()
    assert all(float(r["equiv_relative_error_max"]) < 1e-3 for r in read_csv(tables / "tableS9_shrec17.csv"))
    assert len(read_csv(tables / "tableS4.csv")) == 2
    ev = json.loads((work / "results/shrec17/eval/hae_z8.json").read_text())
    assert ev["kmeans_clusters"] == 6 and ev["split"] == "R/R" and ev["bw"] == 8


def test_tiny_run_is_complete_and_rebuilds_one_table(tiny_run):
    work, cfg = tiny_run
    out = snakemake(work, "-n", "all", "--cores", "2", "--configfile", str(cfg)).stdout
    assert "Nothing to be done" in out
    (work / "results/tables/tableS3.csv").unlink()
    counts = job_counts(snakemake(work, "-n", "all", "--cores", "2", "--configfile", str(cfg)).stdout)
    assert counts == {"table": 1, "scorecard": 1, "all": 1}


def test_tiny_run_scorecard_and_report(tiny_run):
    work, cfg = tiny_run
    page = (work / "results/reproduction.md").read_text()
    assert page.startswith("# Reproduction scorecard") and "numbers within tolerance" in page
    assert "| table1_mnist |" in page and "SYNTHETIC" in page and "config mnist.source: embedded" in page
    # the README's `snakemake --report`: builds with what the workflow extra installs (after `all`:
    # another test deletes a table)
    snakemake(work, "all", "--cores", "2", "--configfile", str(cfg))
    snakemake(work, "--report", "report.html", "--configfile", str(cfg))
    html = (work / "report.html").read_text(errors="replace")
    assert "reproduction.md" in html and "table1_mnist.csv" in html


def test_the_workflow_extra_installs_what_the_report_needs():
    import tomllib
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("pygments") for d in extras["workflow"])


def test_the_conda_env_lists_exactly_the_package_dependencies():
    """envs/holovae.yaml (every rule's `conda:`) = pyproject's dependencies + the workflow extra."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["workflow"]

    def norm(spec):   # "torch>=2.1,<3" -> ("torch", ">=2.1,<3"), markers dropped; conda's pytorch is torch
        spec = spec.split(";")[0].strip()
        name, version = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
        return {"pytorch": "torch"}.get(name.lower(), name.lower()), version.replace(" ", "")

    env = yaml.safe_load((REPO / "envs/holovae.yaml").read_text())["dependencies"]
    listed = [d for d in env if isinstance(d, str) and not d.startswith(("python=", "pip"))]
    listed += [d for d in next(d["pip"] for d in env if isinstance(d, dict)) if not d.startswith("-e")]
    assert sorted(map(norm, listed)) == sorted(map(norm, wanted))
    # and every rule runs in it
    rules = "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    n_rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", rules, flags=re.M))
    assert n_rules > 15 and n_rules == rules.count('conda:\n        "../../envs/holovae.yaml"')


def test_the_default_run_time_is_stated_once():
    """README, config/README.md and config/config.yaml quote the same duration of the default run."""
    pattern = re.compile(r"(?:about|~)\s*(\d+)\s+minutes on 2 CPU cores")
    stated = {name: pattern.findall(" ".join((REPO / name).read_text().split()))
              for name in ("README.md", "config/README.md", "config/config.yaml")}
    assert all(len(v) == 1 for v in stated.values()), stated
    assert len({v[0] for v in stated.values()}) == 1, stated
