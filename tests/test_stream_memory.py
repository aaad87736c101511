"""Streamed training runs in bounded memory: ``holovae train`` in a subprocess whose address
space is capped (``RLIMIT_AS``) trains on a file several times larger than the memory the cap
leaves it, with ``train.data=stream``; the same command with ``train.data=memory`` fails under
the same cap (which proves the cap bites).

The cap is set by the child itself once python, torch, h5py and holovae are imported: its
address space at that moment (~1 GB, mostly libraries and torch's reservations, which no
setting of ours changes) plus ``HEADROOM``. The training file holds ``DATA_FACTOR`` x
``HEADROOM`` bytes of coefficients. One glibc malloc arena (``MALLOC_ARENA_MAX=1``): each
extra thread's arena would reserve 64 MB of address space that is never used.
"""
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HEADROOM = 96 << 20
DATA_FACTOR = 4
IRREPS = "300x0e+200x1e+60x2e"          # 1,200 floats per row
DIM = 1200

CHILD = r"""
import resource, sys
import h5py, torch, e3nn
import torch._dynamo   # a library like the others: torch's optimisers import it when first built
import holovae.train, holovae.data.stream, holovae.commands.train
from holovae.cli import main
torch.set_num_threads(1)
vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[2:]))
"""

pytestmark = pytest.mark.slow


def _write(path: Path, rows: int, seed: int) -> None:
    """A file as ``write_dataset`` lays it out (uncompressed ~1 MB chunks), written in pieces so
    that this process does not hold it either."""
    g = np.random.default_rng(seed)
    chunk = (1 << 18) // DIM
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "holovae-steerable-v1"
        f.attrs["irreps"] = IRREPS
        d = f.create_dataset("coefficients", shape=(rows, DIM), dtype="f4", chunks=(min(rows, chunk), DIM))
        for a in range(0, rows, 8192):
            b = min(rows, a + 8192)
            d[a:b] = g.standard_normal((b - a, DIM), dtype=np.float32) + 0.1


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("capped")
    rows = DATA_FACTOR * HEADROOM // (4 * DIM)
    _write(tmp / "train.h5", rows, 0)
    _write(tmp / "val.h5", 1024, 1)
    assert (tmp / "train.h5").stat().st_size > DATA_FACTOR * HEADROOM
    return tmp


def _capped_train(tmp: Path, data: str) -> subprocess.CompletedProcess:
    sets = [f"model.irreps_in={IRREPS}", "model.latent_dim=4", "model.channels=[4,4]", "model.degrees=[2,1]",
            "model.initial_channels=4", "train.epochs=1", "train.batch_size=512", "train.device=cpu",
            f"train.data={data}"]
    args = ["train", "--train", str(tmp / "train.h5"), "--val", str(tmp / "val.h5"), "--no-progress",
            "--out", str(tmp / data), *[a for s in sets for a in ("--set", s)]]
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, MALLOC_ARENA_MAX="1", OMP_NUM_THREADS="1", PYTHONPATH=root + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), *args], env=env, capture_output=True,
                          text=True, timeout=900)


def test_streamed_training_fits_under_a_cap_that_in_memory_training_does_not(big):
    streamed = _capped_train(big, "stream")
    assert streamed.returncode == 0, streamed.stderr[-3000:]
    assert (big / "stream" / "best.pt").exists()
    in_memory = _capped_train(big, "memory")
    assert in_memory.returncode != 0
    assert "MemoryError" in in_memory.stderr or "Unable to allocate" in in_memory.stderr, in_memory.stderr[-3000:]
