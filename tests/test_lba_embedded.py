"""The LBA complexes shipped inside holovae (holovae/data/embedded/lba, the offline demo): every
complex is complete and labelled; where ../shared/data/lba is present, the cut pockets give the
full proteins' neighbourhoods under both protocols' pocket rules, the chains FASTA the full
proteins' split, and the labels are the PDBbind 2019 refined index's."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from holovae.cli import main
from holovae.data.embedded import embedded_lba_directory
from holovae.data.lba import complex_neighbourhoods, find_complexes, read_pdbbind_index
from holovae.data.sequence_split import protein_sequence, read_chains_fasta

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lba"
EMBEDDED = embedded_lba_directory()
RULES = (("ca", 10.0), ("any_atom", 6.0))
# varied: a Mg2+ near the pocket (1h1d), Cl ligand (1z9h), altlocs and two chains (2iqg), oddt's
# trimmed protein (1imx), an 11-atom ligand (2ohk)
SAMPLE = ("1h1d", "1z9h", "2iqg", "1imx", "2ohk")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not available")


@pytest.fixture(scope="module")
def embedded():
    return {c.pdb_id: c for c in find_complexes(EMBEDDED, receptor="pocket")}


def test_embedded_complexes_are_complete_and_labelled(embedded):
    with open(EMBEDDED / "affinities.csv", newline="") as f:
        rows = {r["pdb_id"]: r for r in csv.DictReader(f)}
    assert len(embedded) == 70 and set(rows) == set(embedded)
    for pid, c in embedded.items():
        assert c.protein is None and c.receptor == c.pocket and c.receptor_kind == "pocket"
        assert c.sequences is not None and read_chains_fasta(c.sequences) and len(c.ligands) == 1
        assert 0 < float(rows[pid]["neglog_aff"]) < 15
    sums = dict(line.split("  ./")[::-1] for line in (EMBEDDED / "SHA256SUMS").read_text().splitlines())
    files = {str(p.relative_to(EMBEDDED)) for p in EMBEDDED.rglob("*") if p.is_file()} - {"SHA256SUMS", "README.md"}
    assert set(sums) == files
    assert all(hashlib.sha256((EMBEDDED / n).read_bytes()).hexdigest() == h for n, h in sums.items())


@needs_shared
@pytest.mark.parametrize("pid", SAMPLE)
def test_cut_pockets_give_the_full_proteins_neighbourhoods(embedded, pid):
    full = {c.pdb_id: c for c in find_complexes(SHARED / "complexes") if c.pdb_id == pid}[pid]
    s_full, ligand = full.load()
    s_cut, ligand_cut = embedded[pid].load()
    np.testing.assert_array_equal(ligand.coords, ligand_cut.coords)
    for rule, cutoff in RULES:
        a = complex_neighbourhoods(s_full, ligand, pocket_rule=rule, pocket_cutoff=cutoff, other_channel=True)
        b = complex_neighbourhoods(s_cut, ligand, pocket_rule=rule, pocket_cutoff=cutoff, other_channel=True)
        assert [s_full.resnum[r] for r in a.residue] == [s_cut.resnum[r] for r in b.residue], rule
        np.testing.assert_array_equal(a.offsets, b.offsets)
        np.testing.assert_array_equal(a.points, b.points)
        np.testing.assert_array_equal(a.channels, b.channels)
    assert read_chains_fasta(embedded[pid].sequences) == {k: v for k, v in protein_sequence(s_full).items() if v}


@needs_shared
def test_labels_are_the_refined_index_where_it_has_them():
    refined = read_pdbbind_index(SHARED / "index" / "INDEX_refined_data.2019")
    with open(EMBEDDED / "affinities.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    from_index = [r for r in rows if r["label_source"] == "INDEX_refined_data.2019"]
    assert len(from_index) == sum(r["pdb_id"] in refined for r in rows) == 19   # of the 22 shared: 3 lack a protein
    assert all(float(r["neglog_aff"]) == refined[r["pdb_id"]] for r in from_index)


@needs_shared
def test_split_of_the_chains_fasta_equals_the_full_proteins(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("1nlo\n1nlp\n1k9q\n1imx\n4yef\n2w9r\n2l1r\n4cwb\n2gj5\n3q6z\n")   # 1nlo/1nlp: one protein
    out = {}
    for name, folder in (("full", SHARED / "complexes"), ("embedded", EMBEDDED)):
        assert main(["lba-split", "--complexes", str(folder), "--ids", str(ids), "--out", str(tmp_path / name),
                     "--folds", "3", "--method", "align", "--no-identity-check"]) == 0
        out[name] = json.loads((tmp_path / name).read_text())
    assert out["full"]["folds"] == out["embedded"]["folds"] and out["full"]["clusters"] == out["embedded"]["clusters"]
    clusters = out["embedded"]["clusters"]
    assert clusters["1nlo"] == clusters["1nlp"] and not out["embedded"]["excluded"]


def test_chains_fasta_errors_name_the_file_and_line(tmp_path):
    f = tmp_path / "x_chains.fasta"
    f.write_text(">A\nMKV\nLL\n>B\nGG\n")
    assert read_chains_fasta(f) == {"A": "MKVLL", "B": "GG"}
    for text, words in ((">A\nMK\n>A\nGG\n", "x_chains.fasta:3: repeated chain 'A'"),
                        ("MK\n", "x_chains.fasta:1: sequence before"), (">A\nMK1\n", "x_chains.fasta:2: not a one-letter"),
                        (">A\n>B\nGG\n", "empty sequence for chain(s) A"), ("\n", "no FASTA records")):
        f.write_text(text)
        with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
            read_chains_fasta(f)
