"""An interrupted training under Snakemake finishes on rerun, with the outputs of an
uninterrupted run; a changed setting retrains the variant instead of failing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from test_workflow import REPO, SNAKEMAKE, local_env, snakemake, write_config

pytestmark = [pytest.mark.skipif(not Path(SNAKEMAKE).exists(), reason="snakemake is not installed"),
              pytest.mark.slow]

SMALL = {
    "results": "results", "threads": 1, "proteins": None, "aminoacids": None, "lba": None, "shrec17": None,
    "mnist.n_train": 120, "mnist.n_test": 40, "mnist.bw": 12, "mnist.lmax": 6,
    "mnist.train": {"epochs": 8, "batch_size": 20, "lr": 0.003, "lambda_x": 50, "lambda_kl": 0.2,
                    "no_kl_epochs": 2, "warmup_kl_epochs": 2, "validations_per_epoch": 2},
    "mnist.architectures": {"small": {"latent_dim": 4, "channels": [4, 4, 4, 4], "degrees": [6, 4, 2, 1]}},
    "mnist.variants": {"hvae": {"architecture": "small", "vae": True, "train_split": "NR"}},
    "mnist.tables": [], "mnist.figures": {"ae_variant": None, "vae_variant": None},
}
MODEL = "results/mnist/models/hvae"


def _history(work):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((work / MODEL / "history.json").read_text())]


def _state(work):
    return torch.load(work / MODEL / "best.pt", weights_only=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    work = tmp_path_factory.mktemp("whole")
    cfg = write_config(work / "c.yaml", **SMALL)
    snakemake(work, f"{MODEL}/best.pt", "--cores", "1", "--configfile", str(cfg))
    return work


def test_kill_9_during_training_then_rerun_gives_the_uninterrupted_outputs(uninterrupted, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", **SMALL)
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), f"{MODEL}/best.pt",
           "--cores", "1", "--configfile", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=local_env(),
                            start_new_session=True)
    last = tmp_path / MODEL / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)      # snakemake and the training it runs, mid-run
    proc.wait()
    assert last.exists(), "training never wrote its first checkpoint"
    assert not (tmp_path / MODEL / "best.pt").exists() and not (tmp_path / MODEL / "history.json").exists()
    epoch = torch.load(last, weights_only=False)["epoch"] + 1
    assert epoch < SMALL["mnist.train"]["epochs"], "killed too late to test resuming"

    # what Snakemake asks for after a kill -9 (its lock outlives it), then the same command again
    snakemake(tmp_path, "--unlock", "--configfile", str(cfg))
    snakemake(tmp_path, f"{MODEL}/best.pt", "--cores", "1", "--configfile", str(cfg))
    log = (tmp_path / "results/logs/train/mnist/hvae.log").read_text()
    assert f"resuming from {MODEL}/last.pt after epoch {epoch}" in log
    assert _history(tmp_path) == _history(uninterrupted)
    a, b = _state(tmp_path), _state(uninterrupted)
    assert a["epoch"] == b["epoch"] and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_changing_a_variant_retrains_it(uninterrupted, tmp_path):
    work = tmp_path / "w"
    subprocess.run(["cp", "-r", str(uninterrupted), str(work)], check=True)
    changed = dict(SMALL, **{"mnist.train": dict(SMALL["mnist.train"], epochs=3)})
    cfg = write_config(work / "c.yaml", **changed)
    snakemake(work, f"{MODEL}/best.pt", "--cores", "1", "--configfile", str(cfg))
    assert [r["epoch"] for r in json.loads((work / MODEL / "history.json").read_text())] == [1, 2, 3]
    assert "starting over" in (work / "results/logs/train/mnist/hvae.log").read_text()
