"""`holovae embed-structures`: a user's structures -> per-residue z, invariant under rigid motions."""
import gzip

import numpy as np
import pytest
import torch
from Bio.PDB import MMCIFParser, PDBIO

from holovae.cli import main
from holovae.data.embedded import embedded_structure_paths
from holovae.data.hdf5 import read_dataset
from holovae.so3 import random_rotation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embed_structures")
    files = [str(p) for p in embedded_structure_paths()[:2]]
    assert main(["prepare-structures", *files, "--out", str(tmp / "train.h5"), "--lmax", "2", "--n-max", "4",
                 "--secondary", "none", "--no-progress"]) == 0
    assert main(["train", "--train", str(tmp / "train.h5"), "--val", str(tmp / "train.h5"), "--out", str(tmp / "m"),
                 "--set", "model.latent_dim=4", "--set", "model.channels=[4,4]", "--set", "model.degrees=[2,1]",
                 "--set", "model.initial_channels=4", "--set", "train.epochs=1", "--set", "train.batch_size=64",
                 "--set", "train.device=cpu", "--no-progress"]) == 0
    return tmp


def _moved_copy(src, dst, seed):
    """``src`` (mmCIF.gz) rotated and translated, written as PDB."""
    with gzip.open(src, "rt") as fh:
        structure = MMCIFParser(QUIET=True).get_structure("x", fh)
    R = random_rotation(generator=torch.Generator().manual_seed(seed)).numpy()
    for atom in structure.get_atoms():
        atom.transform(R.T, np.array([5.0, -3.0, 12.0]))   # Biopython applies x @ rot + tran
    io = PDBIO()
    io.set_structure(structure)
    io.save(str(dst))
    return dst


def test_embed_structures_is_invariant_to_rigid_motions(trained, tmp_path):
    src = embedded_structure_paths()[2]
    moved = _moved_copy(src, tmp_path / "moved.pdb", seed=3)
    model = str(trained / "m" / "best.pt")
    assert main(["embed-structures", str(src), "--model", model, "--out", str(tmp_path / "a.h5"), "--no-progress"]) == 0
    assert main(["embed-structures", str(moved), "--model", model, "--out", str(tmp_path / "b.h5"), "--no-progress"]) == 0
    a, b = read_dataset(tmp_path / "a.h5"), read_dataset(tmp_path / "b.h5")
    assert a.coefficients.shape[1] == 4 and len(a) > 100
    # same residues (the PDB copy has the same chain/residue numbering) and the same z
    assert [i.split("|", 1)[1] for i in a.ids] == [i.split("|", 1)[1] for i in b.ids]
    # The PDB copy stores coordinates to 0.001 Å, so an atom lying at the 10 Å cut-off can fall
    # on the other side of it (3 x 0.0005 Å / 10 Å per atom, ~150 atoms: ~2% of residues). Every other
    # residue must agree closely.
    err = (a.coefficients - b.coefficients).norm(dim=1) / a.coefficients.norm(dim=1)
    assert err.median() < 1e-4, err.median()
    assert (err < 1e-3).float().mean() > 0.95, (err >= 1e-3).sum()


def test_embed_structures_refuses_a_non_protein_model(trained, tmp_path):
    from holovae.models import HVAE, HVAEConfig
    from holovae.models.checkpoint import save_model
    save_model(HVAE(HVAEConfig("1x0e+1x1e+1x2e", 2, [2, 2], [2, 1])), tmp_path / "mnist.pt")
    assert main(["embed-structures", str(embedded_structure_paths()[0]), "--model", str(tmp_path / "mnist.pt"),
                 "--out", str(tmp_path / "x.h5")]) == 1
    assert not (tmp_path / "x.h5").exists()
