"""Sequence-identity clustering and splits for the LBA experiment (holovae/data/sequence_split.py)."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from holovae.data.sequence_split import (alignment_z_score, chain_set_identity, check_split_identity,
                                         cluster_by_identity, complex_protein_sequences, identity_split,
                                         linked, protein_sequence, sequence_identity)

SHARED = Path(__file__).resolve().parents[2] / "shared"
COMPLEXES = SHARED / "data" / "lba" / "complexes"
needs_complexes = pytest.mark.skipif(not COMPLEXES.is_dir(), reason=f"{COMPLEXES} not present")
needs_mmseqs = pytest.mark.skipif(shutil.which("mmseqs") is None, reason="mmseqs not on PATH")

AMINO_ACIDS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))

# Complexes of the same protein (UniProt accession, from the PDB entries), three per family,
# plus unrelated singletons; these are the families the clustering must keep together.
FAMILIES = {
    "thrombin (P00734)": ["1a61", "1k22", "1ypg"],
    "BACE1 (P56817)": ["2iqg", "2ohk", "2viz"],
    "carbonic anhydrase II (P00918)": ["3ibi", "3s71", "5eh7"],
    "HIV-1 protease": ["1hte", "2nnk", "2p3a"],
}
SINGLETONS = ["1eve", "1h1d", "2fv5"]


def random_protein(n, seed):
    return "".join(np.random.default_rng(seed).choice(AMINO_ACIDS, n))


@pytest.fixture(scope="module")
def lba_sequences():
    """Chain sequences of the family and singleton complexes (parsed once per module)."""
    wanted = [c for members in FAMILIES.values() for c in members] + SINGLETONS
    sequences = {}
    for cid in wanted:
        files = sorted(COMPLEXES.glob(f"*/{cid}/{cid}_protein.pdb*"))
        assert files, f"{cid}_protein.pdb[.gz] not found under {COMPLEXES}"
        sequences[cid] = tuple(protein_sequence(files[0]).values())
    return sequences


# -------------------------------------------------------------------------------- identity


def test_identical_sequences_have_identity_one():
    s = random_protein(120, 0)
    assert sequence_identity(s, s) == 1.0
    assert sequence_identity(s.lower(), s) == 1.0


def test_identity_of_a_hand_aligned_pair():
    # one substitution in ten positions, no gaps: 9 identical / 10
    assert sequence_identity("MKTAYIAKQR", "MKTAHIAKQR") == pytest.approx(0.9)
    # the same ten residues inside a longer construct: end gaps are free and the identity is
    # over the shorter sequence, so a domain in a construct counts as identical
    assert sequence_identity("MKTAYIAKQR", "GSHMGSMKTAYIAKQRLEHHHHHH") == pytest.approx(1.0)
    # an internal 6-residue insertion (gap -10 - 0.5 * 5 = -12.5) against the loss of the
    # second half's matches: the alignment keeps the gap, 20 identical / 20
    a = "WCHMYFWCHMYFWCHMYFWC"
    b = a[:10] + "GGGGGG" + a[10:]
    assert sequence_identity(a, b) == pytest.approx(1.0)


def test_unrelated_random_sequences_are_below_30_percent():
    identities = [sequence_identity(random_protein(200, 2 * k), random_protein(230, 2 * k + 1)) for k in range(5)]
    assert max(identities) < 0.3


def test_significance_separates_a_mutant_from_a_chance_match():
    s = random_protein(150, 10)
    rng = np.random.default_rng(11)
    mutant = "".join(c if rng.random() > 0.4 else rng.choice(AMINO_ACIDS) for c in s)   # ~60% identical
    assert sequence_identity(s, mutant) > 0.5
    assert alignment_z_score(s, mutant) > 20
    assert linked(s, mutant)
    # a short peptide placed freely in a long unrelated protein: identity can exceed 0.3,
    # the alignment is not significant, the pair is not linked
    long_protein = random_protein(600, 12)
    peptide = random_protein(12, 13)
    assert alignment_z_score(peptide, long_protein) < 8
    assert not linked(peptide, long_protein)
    # deterministic: the shuffles are seeded by the pair
    assert alignment_z_score(s, mutant) == alignment_z_score(mutant, s)


def test_chain_set_identity_is_the_maximum_over_chain_pairs_without_short_chains():
    heavy = random_protein(250, 20)
    light = random_protein(36, 21)
    peptide = random_protein(12, 22)
    other = random_protein(200, 23)
    assert chain_set_identity((light, heavy), (heavy,)) == 1.0
    assert chain_set_identity((peptide, other), (peptide, heavy)) < 0.3   # the shared 12-mer is ignored
    assert chain_set_identity((peptide,), (peptide,)) == 1.0   # kept when it is all a protein has


# ---------------------------------------------------------------------- clustering / split


def test_clusters_join_linked_proteins_transitively():
    base = random_protein(160, 30)
    rng = np.random.default_rng(31)

    def mutate(s, rate):
        return "".join(c if rng.random() > rate else rng.choice(AMINO_ACIDS) for c in s)

    sequences = {"a": base, "b": mutate(base, 0.3), "c": random_protein(140, 32), "d": random_protein(180, 33)}
    sequences["e"] = sequences["b"]   # identical to b
    clusters = cluster_by_identity(sequences, method="align")
    assert clusters.method == "align"
    assert clusters.clusters == [["a", "b", "e"], ["c"], ["d"]]
    assert clusters.extra["alignments"] < 10   # e is joined without aligning, pairs in a cluster are skipped


def test_identity_split_keeps_clusters_whole_and_is_deterministic():
    clusters = [[f"p{k}_{i}" for i in range(size)] for k, size in enumerate([5, 3, 3, 2, 2, 1, 1, 1, 1, 1])]
    split = identity_split(clusters, fractions=(0.6, 0.2, 0.2), seed=3)
    assert sorted(split.train + split.val + split.test) == sorted(i for c in clusters for i in c)
    where = {i: name for name, ids in split._asdict().items() for i in ids}
    for cluster in clusters:
        assert len({where[i] for i in cluster}) == 1
    assert len(split.val) <= 4 and len(split.test) <= 4 and split.val and split.test
    assert identity_split(list(reversed(clusters)), fractions=(0.6, 0.2, 0.2), seed=3) == split
    assert identity_split(clusters, fractions=(0.6, 0.2, 0.2), seed=4) != split


def test_check_split_identity_finds_the_closest_cross_set_pair():
    base = random_protein(150, 40)
    rng = np.random.default_rng(41)
    close = "".join(c if rng.random() > 0.5 else rng.choice(AMINO_ACIDS) for c in base)
    sequences = {"a": base, "b": close, "c": random_protein(150, 42)}
    leaky = check_split_identity(sequences, {"train": ["a", "c"], "test": ["b"]})
    assert leaky.max_identity == pytest.approx(sequence_identity(base, close))
    assert {leaky.id_a, leaky.id_b} == {"a", "b"} and leaky.z_score >= 8
    clean = check_split_identity(sequences, {"train": ["a", "b"], "test": ["c"]})
    assert np.isnan(clean.max_identity) and "no significant" in clean.caption()


@needs_complexes
def test_protein_sequence_of_a_real_structure():
    chains = protein_sequence(COMPLEXES / "gign_toy_set" / "3ibi" / "3ibi_protein.pdb.gz")
    assert list(chains) == ["A"] and len(chains["A"]) == 257   # manifest: 257 amino-acid residues
    assert chains["A"].startswith("HHWGYGKHNGPEHWHKDFPIAKGERQSPVD")   # carbonic anhydrase II


@needs_complexes
def test_same_protein_lands_in_one_cluster(lba_sequences):
    clusters = cluster_by_identity(lba_sequences, method="align")
    cluster_of = clusters.cluster_of()
    for family, members in FAMILIES.items():
        assert len({cluster_of[m] for m in members}) == 1, family
    families = [{cluster_of[m[0]]} for m in FAMILIES.values()]
    assert len(set.union(*families)) == len(FAMILIES)   # distinct proteins stay apart
    assert sorted(clusters.clusters, key=len)[:len(SINGLETONS)] == [[s] for s in SINGLETONS]


@needs_complexes
def test_lba_sequences_skip_pocket_only_complexes():
    sequences, missing = complex_protein_sequences(COMPLEXES)
    assert set(missing) == {"10gs", "3kwa", "4ljh"}   # PROVENANCE.md: pocket + ligand only
    assert len(sequences) == 70 and all(sequences.values())


@pytest.mark.slow   # runs the external mmseqs2 search: ~13 s
@needs_complexes
@needs_mmseqs
def test_mmseqs_and_alignment_agree_on_the_families(lba_sequences):
    by_mmseqs = cluster_by_identity(lba_sequences, method="mmseqs")
    by_alignment = cluster_by_identity(lba_sequences, method="align")
    assert by_mmseqs.clusters == by_alignment.clusters
    assert by_mmseqs.command.startswith("mmseqs easy-cluster") and "--min-seq-id 0.3 -c 0.8" in by_mmseqs.command
    assert by_mmseqs.version.startswith("mmseqs2 ")


# ------------------------------------------------------------------------------ lba-split


def _pocket_pdb(protein, ligand_sdf, cutoff=10.0) -> str:
    """The residues of ``protein`` with an atom within ``cutoff`` Å of a ligand atom (PDBbind's
    pocket definition), as PDB text: read here from the fixed columns, not by holovae."""
    import gzip as _gzip

    lines = _gzip.open(protein, "rt").read().splitlines() if str(protein).endswith(".gz") else \
        Path(protein).read_text().splitlines()
    sdf = Path(ligand_sdf).read_text().splitlines()
    n = int(sdf[3][:3])
    lig = np.array([[float(ln[0:10]), float(ln[10:20]), float(ln[20:30])] for ln in sdf[4:4 + n]])
    atoms = [ln for ln in lines if ln.startswith(("ATOM  ", "HETATM"))]
    xyz = np.array([[float(ln[30:38]), float(ln[38:46]), float(ln[46:54])] for ln in atoms])
    near = (np.linalg.norm(xyz[:, None] - lig[None], axis=2) <= cutoff).any(1)
    keys = {ln[17:27] for ln, x in zip(atoms, near) if x}
    return "".join(ln + "\n" for ln in atoms if ln[17:27] in keys) + "END\n"


def test_lba_split_takes_the_pockets_chains_when_there_is_no_protein_file(tmp_path):
    """PDBbind folders with <id>_pocket.pdb and no <id>_protein.pdb: prepare-lba --receptor pocket
    takes them, lba-split refused them (0 readable sequences); it now splits on the pocket's
    chains and says which complexes were sequenced so."""
    import json

    from holovae.cli import main

    source = Path(__file__).resolve().parents[2] / "shared" / "data" / "lba" / "complexes" / "gign_toy_set"
    if not source.is_dir():
        pytest.skip(f"real PDBbind complexes with protein files not available at {source}")
    ids = sorted(p.name for p in source.iterdir() if p.is_dir())[:16]
    proteins = {cid: next((source / cid).glob(f"{cid}_protein.pdb*")) for cid in ids}
    for cid in ids:
        d = tmp_path / "complexes" / cid
        d.mkdir(parents=True)
        (d / f"{cid}_ligand.sdf").write_bytes((source / cid / f"{cid}_ligand.sdf").read_bytes())
        (d / f"{cid}_pocket.pdb").write_text(_pocket_pdb(proteins[cid], source / cid / f"{cid}_ligand.sdf"))
        pocket_length = sum(map(len, protein_sequence(d / f"{cid}_pocket.pdb").values()))
        assert 15 < pocket_length < sum(map(len, protein_sequence(proteins[cid]).values()))

    def split():
        out = tmp_path / "split.json"
        assert main(["lba-split", "--complexes", str(tmp_path / "complexes"), "--out", str(out), "--method", "align",
                     "--no-identity-check"]) == 0
        return json.loads(out.read_text())

    pockets = split()                                  # pockets only
    assert pockets["sequenced_from_pocket"] == ids and pockets["excluded"] == {}
    assert sorted(i for s in ("train", "val", "test") for i in pockets["folds"][0][s]) == ids
    assert f"{len(ids)} of them sequenced from their pocket file" in pockets["caption"]
    for cid in ids[1::2]:                              # mixed: the protein file wherever there is one
        (tmp_path / "complexes" / cid / proteins[cid].name).write_bytes(proteins[cid].read_bytes())
    mixed = split()
    assert mixed["sequenced_from_pocket"] == ids[0::2] and sorted(mixed["clusters"]) == ids
