"""LBA data (holovae.data.lba): affinity tables, complex folders, ligand files, pocket residues,
pocket neighbourhoods, SE(3) invariance, skip-and-report, HDF5 files and ATOM3D LMDBs.

Runs on the real complexes in ``../shared/data/lba`` (skipped when that folder is absent).
Brute-force references are plain numpy distance matrices; ligand parsing is compared with
RDKit (when installed) on every shared ligand file.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from holovae.data.featurize import transform_attrs
from holovae.data.hdf5 import DatasetFormatError, read_dataset, write_dataset
from holovae.data.lba import (KIND, Atom3DLMDB, ComplexError, LigandError, LoadedComplex, add_ligand, atom3d_structure,
                              complex_neighbourhoods, featurize_complexes, find_complexes, pocket_residues,
                              read_lba_dataset, read_ligand, read_mol2, read_pdbbind_index, read_sdf,
                              transform_mismatches, write_lba_dataset, write_skipped)
from holovae.data.structures import STANDARD_AA, parse_structure
from holovae.so3 import rotate_flat

SHARED = Path(__file__).resolve().parents[2] / "shared"
LBA = SHARED / "data" / "lba"
COMPLEXES = LBA / "complexes"
INDEX = LBA / "index" / "INDEX_refined_data.2019"
pytestmark = pytest.mark.skipif(not COMPLEXES.is_dir(), reason=f"{COMPLEXES} not available")
# small and varied: Cl (1z9h, 3dgq), Fe + a MOL2 that RDKit rejects (3qlb), I (2iqg), a plain
# (not gzipped) oddt protein (1imx), an 11-atom ligand (2ohk)
SAMPLE = ("1z9h", "3qlb", "2iqg", "1imx", "2ohk")
CNOS = ("C", "N", "O", "S")


@pytest.fixture(scope="module")
def complexes():
    return {c.pdb_id: c for c in find_complexes(COMPLEXES)}


@pytest.fixture(scope="module")
def labels():
    return read_pdbbind_index(COMPLEXES / "manifest.csv")


@pytest.fixture(scope="module")
def loaded(complexes):
    return {pid: complexes[pid].load() for pid in SAMPLE}


# ------------------------------------------------------------------------------------------------
# affinity tables and folders
# ------------------------------------------------------------------------------------------------
def test_pdbbind_index_and_csv_tables():
    index = read_pdbbind_index(INDEX)
    assert len(index) == 4852
    assert index["2r58"] == 2.00 and index["3c2f"] == 2.00
    assert min(index.values()) == 2.00 and max(index.values()) == 11.92
    # the CSV derived from the same index, and the complexes' manifest (column neglog_aff)
    assert read_pdbbind_index(LBA / "index" / "pdbbind2019_refined_labels.csv") == index
    manifest = read_pdbbind_index(COMPLEXES / "manifest.csv")
    assert len(manifest) == 73 and manifest["1a61"] == 8.62
    assert len(read_pdbbind_index(LBA / "index" / "CASF-2016_CoreSet.dat")) == 285
    assert len(read_pdbbind_index(LBA / "index" / "gign" / "test2016.csv")) == 285


def test_pdbbind_index_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "INDEX_bad"
    bad.write_text("# header\n2r58  2.00  2007   2.00  Kd=10mM  // 2r58.pdf (MLY)\n3c2f  2.35  2008\n")
    with pytest.raises(ValueError, match=rf"{bad}:3: expected 'code resolution"):
        read_pdbbind_index(bad)
    conflict = tmp_path / "INDEX_conflict"
    conflict.write_text("2r58  2.00  2007   2.00  Kd=10mM\n2R58  2.00  2007   3.00  Kd=1mM\n")
    with pytest.raises(ValueError, match=rf"{conflict}:2: 2r58 has affinity 3.0, but 2.0 at {conflict}:1"):
        read_pdbbind_index(conflict)
    table = tmp_path / "labels.csv"
    table.write_text("pdbid,-logKd/Ki\n1abc,5.5\n2abc,n/a\n")
    with pytest.raises(ValueError, match=rf"{table}:3: expected a number in column '-logKd/Ki'"):
        read_pdbbind_index(table)
    table.write_text("name,value\n1abc,5.5\n")
    with pytest.raises(ValueError, match="no PDB id column"):
        read_pdbbind_index(table)
    assert read_pdbbind_index(table, id_column="name", value_column="value") == {"1abc": 5.5}


def test_find_complexes(complexes):
    assert len(complexes) == 73
    assert sum(c.receptor is not None for c in complexes.values()) == 70
    c = complexes["1a61"]
    assert c.receptor == c.protein and c.protein.name == "1a61_protein.pdb.gz" and c.receptor_kind == "protein"
    assert [p.name for p in c.ligands] == ["1a61_ligand.sdf", "1a61_ligand.mol2"]        # SDF first
    assert complexes["10gs"].receptor is None and complexes["10gs"].pocket.name == "10gs_pocket.pdb"
    fallback = {c.pdb_id: c for c in find_complexes(COMPLEXES, receptor="protein_or_pocket")}
    assert fallback["10gs"].receptor == fallback["10gs"].pocket and fallback["10gs"].receptor_kind == "pocket"
    assert fallback["1a61"].receptor_kind == "protein"
    assert fallback["3kwa"].receptor is None                 # only "3kwa_5Apocket.pdb": not PDBbind naming


# ------------------------------------------------------------------------------------------------
# ligands
# ------------------------------------------------------------------------------------------------
def _rdkit_heavy_atoms(path: Path):
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    read = Chem.MolFromMolFile if path.suffix == ".sdf" else Chem.MolFromMol2File
    mol = read(str(path), sanitize=False, removeHs=False)
    if mol is None:
        return None
    el = np.array([a.GetSymbol().upper() for a in mol.GetAtoms()])
    heavy = ~np.isin(el, ["H", "D", "T"])
    return el[heavy], mol.GetConformer().GetPositions()[heavy]


def test_ligand_readers_agree_with_rdkit():
    pytest.importorskip("rdkit")
    files = sorted(COMPLEXES.glob("*/*/*_ligand.sdf")) + sorted(COMPLEXES.glob("*/*/*_ligand.mol2"))
    assert len(files) == 73 + 65
    rdkit_failed = []
    for path in files:
        ours = read_sdf(path) if path.suffix == ".sdf" else read_mol2(path)
        ref = _rdkit_heavy_atoms(path)
        if ref is None:
            rdkit_failed.append(path.name)
            continue
        assert ours.element.tolist() == ref[0].tolist(), path
        np.testing.assert_allclose(ours.coords, ref[1], atol=1e-3, err_msg=str(path))
    # RDKit rejects this MOL2 even unsanitised ("ar" bonds on a carboxylate); ours reads it and
    # it holds the same atoms as the SDF (which both read)
    assert rdkit_failed == ["3qlb_ligand.mol2"]


def test_sdf_and_mol2_hold_the_same_heavy_atoms(complexes):
    from scipy.spatial import cKDTree

    n = 0
    for c in complexes.values():
        if len(c.ligands) < 2:
            continue
        sdf, mol2 = read_sdf(c.ligands[0]), read_mol2(c.ligands[1])
        assert sdf.n_atoms == mol2.n_atoms, c.pdb_id
        d, j = cKDTree(sdf.coords).query(mol2.coords)
        assert d.max() < 1e-3 and (sdf.element[j] == mol2.element).all(), c.pdb_id
        n += 1
    assert n == 65


def test_ligand_elements(complexes, tmp_path):
    lig = read_ligand(complexes["1z9h"].ligands)
    assert lig.source.endswith("1z9h_ligand.sdf")
    assert (lig.element == "CL").sum() == 1 and "L" not in lig.element and lig.n_atoms == 25
    assert (read_ligand(complexes["3dgq"].ligands).element == "CL").sum() == 2
    assert (read_ligand(complexes["2iqg"].ligands).element == "I").sum() == 1
    assert (read_mol2(complexes["3qlb"].ligands[1]).element == "FE").sum() == 1
    assert not any("H" in read_ligand(c.ligands).element for c in complexes.values())
    # bromine: no shared complex has one; this RCSB crystal ligand (C23 H29 Br N6 O5 S) does
    with tarfile.open(LBA / "ligands" / "rcsb_ligands_refined2019.tar.gz") as tf:
        (tmp_path / "1c4u.sdf").write_bytes(tf.extractfile("rcsb_ligands_refined2019/1c4u.sdf").read())
    br = read_sdf(tmp_path / "1c4u.sdf")
    text = (tmp_path / "1c4u.sdf").read_text().splitlines()
    assert any("C23 N6 O5 Br S" in line for line in text)
    assert sum(line[31:34].strip() == "Br" for line in text[4:40]) == 1   # RCSB right-aligns the symbol
    assert br.element.tolist().count("BR") == 1 and "B" not in br.element
    assert {e: br.element.tolist().count(e) for e in ("C", "N", "O", "S")} == {"C": 23, "N": 6, "O": 5, "S": 1}


def test_ligand_formats_and_errors(complexes, tmp_path):
    path = complexes["1z9h"].ligands[0]
    ref = read_sdf(path)
    gz = tmp_path / "x_ligand.sdf.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(read_sdf(gz).coords, ref.coords)
    if importlib.util.find_spec("rdkit"):
        from rdkit import Chem

        v3000 = tmp_path / "v3000.sdf"
        v3000.write_text(Chem.MolToV3KMolBlock(Chem.MolFromMolFile(str(path), sanitize=False, removeHs=False)))
        assert "V3000" in v3000.read_text()
        lig = read_sdf(v3000)
        assert lig.element.tolist() == ref.element.tolist()
        np.testing.assert_allclose(lig.coords, ref.coords, atol=1e-4)
    lines = path.read_text().splitlines()
    truncated = tmp_path / "truncated.sdf"
    truncated.write_text("\n".join(lines[:12]) + "\n")
    with pytest.raises(LigandError, match=rf"{truncated}: no 'M  END' line"):
        read_sdf(truncated)
    query = tmp_path / "query.sdf"
    query.write_text("\n".join(lines[:4] + [lines[4][:31] + "Q  " + lines[4][34:]] + lines[5:]) + "\n")
    with pytest.raises(LigandError, match=rf"{query}:5: 'Q' is not an element symbol"):
        read_sdf(query)
    mol2 = complexes["1z9h"].ligands[1].read_text().splitlines()
    at = mol2.index("@<TRIPOS>ATOM")
    short = tmp_path / "short.mol2"
    short.write_text("\n".join(mol2[:at + 5]) + "\n")
    with pytest.raises(LigandError, match=rf"{short}: MOLECULE record declares \d+ atoms, the ATOM section has 4"):
        read_mol2(short)
    with pytest.raises(LigandError, match=r"truncated\.sdf: no 'M  END'.*; .*short\.mol2: MOLECULE record"):
        read_ligand([truncated, short])


# ------------------------------------------------------------------------------------------------
# pockets and neighbourhoods against brute force
# ------------------------------------------------------------------------------------------------
def _brute_pocket(s, lig, cutoff=10.0) -> np.ndarray:
    """Standard, non-hetero residues with atoms N, CA (carbon), C whose Cα is within ``cutoff``
    of a ligand atom: full distance matrix."""
    out = []
    for r in range(s.n_residues):
        atoms = np.flatnonzero(s.residue_index == r)
        names = dict(zip(s.atom_name[atoms].tolist(), atoms.tolist()))
        if s.is_hetero[r] or s.resname[r] not in STANDARD_AA or not {"N", "CA", "C"} <= set(names):
            continue
        ca = names["CA"]
        if s.element[ca] != "C":
            continue
        d = np.sqrt(((s.coords[ca].astype(np.float64) - lig.coords.astype(np.float64)) ** 2).sum(1))
        if d.min() <= cutoff:
            out.append(r)
    return np.array(out, dtype=np.int64)


def test_waters_and_hydrogens_are_removed(complexes, loaded):
    raw = gzip.decompress(complexes["1z9h"].protein.read_bytes()).decode()
    assert "HOH" in raw and any(l.startswith("ATOM") and l[76:78].strip() == "H" for l in raw.splitlines())
    for pid, (s, lig) in loaded.items():
        assert not np.isin(s.element, ["H", "D"]).any() and not np.isin(s.resname, ["HOH", "WAT"]).any(), pid
        assert not np.isin(lig.element, ["H", "D"]).any(), pid


def test_pocket_residues_equal_brute_force(loaded):
    for pid, (s, lig) in loaded.items():
        pocket = pocket_residues(s, lig.coords)
        np.testing.assert_array_equal(pocket, _brute_pocket(s, lig), err_msg=pid)
        assert 15 <= len(pocket) <= 120, (pid, len(pocket))
        assert len(pocket_residues(s, lig.coords, cutoff=6.0)) < len(pocket)


def _gemmi_pockets(path, ligand_coords: np.ndarray) -> tuple[set, set]:
    """``(Cα within 10 Å, any heavy atom within 6 Å)`` residue keys ``(chain, resnum, icode)`` of
    a protein file read by gemmi (not holovae's parser), by scipy distance matrices: standard
    amino acids (ATOM records) with N, CA and C, hydrogens and waters removed."""
    gemmi = pytest.importorskip("gemmi")
    from scipy.spatial.distance import cdist

    st = gemmi.read_structure(str(path))
    st.remove_hydrogens()
    st.remove_waters()
    lig = np.asarray(ligand_coords, dtype=np.float64)
    ca_10, any_6 = set(), set()
    for chain in st[0]:
        for res in chain:
            if res.name not in STANDARD_AA or res.het_flag != "A" or not {"N", "CA", "C"} <= {a.name for a in res}:
                continue
            key = (chain.name, res.seqid.num, res.seqid.icode.strip())
            ca = np.array([a.pos.tolist() for a in res if a.name == "CA" and a.element.name == "C"][:1])
            if len(ca) and cdist(ca, lig).min() <= 10.0:
                ca_10.add(key)
            if cdist(np.array([a.pos.tolist() for a in res]), lig).min() <= 6.0:
                any_6.add(key)
    return ca_10, any_6


@pytest.mark.parametrize("pid", ["1z9h", "2iqg", "2ohk"])
def test_paper_and_authors_pockets_against_gemmi(complexes, loaded, pid):
    """The paper's pocket (Cα within 10 Å) and ATOM3D's, which the authors' code uses (any
    atom within 6 Å), on real complexes; the two differ (about twice as many residues)."""
    from holovae.data.lba_pockets import protocol_pocket, residue_keys

    s, lig = loaded[pid]
    ca_10, any_6 = _gemmi_pockets(complexes[pid].protein, lig.coords)
    paper = set(residue_keys(s, pocket_residues(s, lig.coords, *protocol_pocket("paper")[::-1])))
    assert protocol_pocket("paper") == ("ca", 10.0) and protocol_pocket("authors") == ("any_atom", 6.0)
    authors = set(residue_keys(s, pocket_residues(s, lig.coords, 6.0, rule="any_atom")))
    assert paper == ca_10 and authors == any_6
    assert len(paper) > 1.5 * len(authors) > 0 and paper != authors


@pytest.mark.parametrize("other_channel", [False, True])
def test_neighbourhoods_equal_brute_force(loaded, other_channel):
    for pid, (s, lig) in loaded.items():
        clouds = complex_neighbourhoods(s, lig, elements=CNOS, other_channel=other_channel)
        np.testing.assert_array_equal(clouds.residue, _brute_pocket(s, lig), err_msg=pid)
        xyz = np.concatenate([s.coords, lig.coords]).astype(np.float64)
        element = np.concatenate([s.element, lig.element])
        is_ligand = np.arange(len(xyz)) >= s.n_atoms
        n_ligand_seen = 0
        for b, r in enumerate(clouds.residue.tolist()):
            ca = int(s.ca_index[r])
            inside = np.sqrt(((xyz - xyz[ca]) ** 2).sum(1)) <= 10.0
            inside[ca] = False                                      # the central Cα is dropped
            if not other_channel:
                inside &= np.isin(element, CNOS)
            lo, hi = clouds.offsets[b], clouds.offsets[b + 1]
            assert hi - lo == inside.sum(), (pid, r)
            np.testing.assert_allclose(clouds.points[lo:hi], xyz[inside] - xyz[ca], atol=1e-5)
            n_ligand_seen += (inside & is_ligand).sum()
        assert n_ligand_seen > 0, pid                             # ligand atoms are in the clouds
    # chlorine: dropped without the "other" channel, channel 4 with it
    s, lig = loaded["1z9h"]
    clouds = complex_neighbourhoods(s, lig, other_channel=other_channel)
    assert clouds.n_channels == 4 + other_channel
    assert (clouds.channels == 4).any() == other_channel


def test_add_ligand_keeps_protein_indices(loaded):
    s, lig = loaded["2ohk"]
    merged = add_ligand(s, lig)
    assert merged.n_residues == s.n_residues + 1 and merged.n_atoms == s.n_atoms + lig.n_atoms
    np.testing.assert_array_equal(merged.ca_index[:-1], s.ca_index)
    assert merged.resname[-1] == "LIG" and merged.is_hetero[-1] and merged.ca_index[-1] == -1
    assert (merged.residue_index[s.n_atoms:] == s.n_residues).all()


# ------------------------------------------------------------------------------------------------
# SE(3) invariance
# ------------------------------------------------------------------------------------------------
def test_rigid_motion_of_the_complex_rotates_the_coefficients(loaded, labels):
    from scipy.spatial.transform import Rotation

    s, lig = loaded["2ohk"]
    R = Rotation.random(random_state=7).as_matrix()
    t = np.array([31.0, -47.5, 12.25])
    move = lambda x: (x.astype(np.float64) @ R.T + t).astype(np.float32)  # noqa: E731
    moved = LoadedComplex("2ohk", replace(s, coords=move(s.coords)), replace(lig, coords=move(lig.coords)))
    a = featurize_complexes([LoadedComplex("2ohk", s, lig)], labels, lmax=6)
    b = featurize_complexes([moved], labels, lmax=6)
    assert a.ids == b.ids and len(a) == a.n_pocket[0] > 10
    l0 = a.irreps.slices()[0]
    x, y = a.coefficients.astype(np.float64), b.coefficients.astype(np.float64)
    rel = lambda u, v: np.abs(u - v).max(axis=1) / np.abs(v).max(axis=1)  # noqa: E731
    assert rel(y[:, l0], x[:, l0]).max() < 1e-4                         # invariants unchanged
    assert rel(y, x).max() > 1e-2                                       # ... the rest is not
    rotated = rotate_flat(torch.from_numpy(x), a.irreps, torch.from_numpy(R)).numpy()
    assert rel(y, rotated).max() < 1e-4                                 # it transforms by Wigner-D


# ------------------------------------------------------------------------------------------------
# featurisation, skip-and-report, files
# ------------------------------------------------------------------------------------------------
def _write_sdf(path: Path, lig, shift=0.0) -> None:
    lines = [path.stem, "  holovae-test", "", f"{lig.n_atoms:3d}  0  0  0  0  0  0  0  0  0999 V2000"]
    for el, (x, y, z) in zip(lig.element.tolist(), (lig.coords.astype(np.float64) + shift).tolist()):
        lines.append(f"{x:10.4f}{y:10.4f}{z:10.4f} {el.capitalize():<3} 0  0  0  0  0  0  0  0  0  0  0  0")
    path.write_text("\n".join(lines + ["M  END", "$$$$"]) + "\n")


@pytest.fixture(scope="module")
def batch(complexes, labels, tmp_path_factory):
    """Three good complexes and four bad ones in a PDBbind-style folder, featurised at L = 2."""
    root = tmp_path_factory.mktemp("lba")
    good = ("1z9h", "2ohk", "3qlb")
    for pid in good:
        shutil.copytree(complexes[pid].directory, root / pid)

    def folder(pid, protein_from, ligand_from=None):
        d = root / pid
        d.mkdir()
        shutil.copy(complexes[protein_from].protein, d / f"{pid}_protein.pdb.gz")
        if ligand_from:
            for p in complexes[ligand_from].ligands:
                shutil.copy(p, d / p.name.replace(ligand_from, pid))
        return d

    d = folder("9bad", "2ohk")                      # ligand truncated in both formats
    (d / "9bad_ligand.sdf").write_text("\n".join(complexes["2ohk"].ligands[0].read_text().splitlines()[:8]))
    (d / "9bad_ligand.mol2").write_text("@<TRIPOS>MOLECULE\n9bad\n 11 11\n@<TRIPOS>ATOM\n 1 C1 0.0 0.0\n")
    d = folder("9far", "2ohk")                      # the ligand 500 Å away: no pocket
    _write_sdf(d / "9far_ligand.sdf", read_ligand(complexes["2ohk"].ligands), shift=500.0)
    folder("9new", "2ohk", ligand_from="2ohk")      # not in the affinity table
    d = folder("9prt", "2ohk", ligand_from="2ohk")  # protein file corrupted
    (d / "9prt_protein.pdb.gz").write_bytes((d / "9prt_protein.pdb.gz").read_bytes()[:300])
    table = {**labels, "9bad": 1.0, "9far": 2.0, "9prt": 3.0}
    found = find_complexes(root)
    return found, table, featurize_complexes(found, table, lmax=2, chunk=40)


def test_featurize_skips_and_reports(batch, labels):
    found, table, f = batch
    assert [c.pdb_id for c in found] == ["1z9h", "2ohk", "3qlb", "9bad", "9far", "9new", "9prt"]
    assert f.complex_ids.tolist() == ["1z9h", "2ohk", "3qlb"]
    reasons = dict(f.skipped)
    assert set(reasons) == {"9bad", "9far", "9new", "9prt"}
    assert reasons["9bad"].startswith("ligand does not parse:")
    assert "9bad_ligand.sdf" in reasons["9bad"] and "9bad_ligand.mol2" in reasons["9bad"]
    assert reasons["9far"].startswith("no pocket residue:") and "(closest 8" in reasons["9far"]   # 500 Å along x, y, z
    assert reasons["9new"] == "9new is not in the affinity table"
    assert reasons["9prt"].startswith("protein does not parse:") and "9prt_protein.pdb.gz" in reasons["9prt"]
    np.testing.assert_array_equal(f.affinity, [labels["1z9h"], labels["2ohk"], labels["3qlb"]])
    assert f.ligand_file.tolist() == ["1z9h_ligand.sdf", "2ohk_ligand.sdf", "3qlb_ligand.sdf"]
    assert f.receptor.tolist() == ["protein"] * 3
    # rows grouped by complex, as many as pocket residues
    np.testing.assert_array_equal(f.complex_index, np.repeat(np.arange(3), f.n_pocket))
    for m, pid in enumerate(f.complex_ids.tolist()):
        s, lig = found[m].load()
        assert f.n_pocket[m] == len(pocket_residues(s, lig.coords))
        assert all(i.startswith(f"{pid}|") for i in np.asarray(f.ids)[f.rows_of(pid)])
    assert f.coefficients.shape == (f.n_pocket.sum(), f.irreps.dim) and np.isfinite(f.coefficients).all()
    assert f.attrs["kind"] == KIND and f.attrs["n_complexes"] == 7 and f.attrs["n_complexes_ok"] == 3
    assert "1z9h/1z9h_ligand.sdf" in f.attrs["source_sha256"]
    # the chunking (chunk=40 here: several transforms) changes only float32 summation order
    alone = featurize_complexes(found[1:2], table, lmax=2)
    mine = f.coefficients[f.rows_of("2ohk")]
    np.testing.assert_allclose(alone.coefficients, mine, rtol=1e-4, atol=1e-6 * np.abs(mine).max())


def test_unlabelled_and_pocket_fallback(complexes):
    f = featurize_complexes([c for c in find_complexes(COMPLEXES, receptor="protein_or_pocket")
                             if c.pdb_id in ("10gs", "2ohk")], None, lmax=1)
    assert f.complex_ids.tolist() == ["10gs", "2ohk"] and np.isnan(f.affinity).all()
    assert f.receptor.tolist() == ["pocket", "protein"] and f.attrs["receptors_used"] == {"pocket": 1, "protein": 1}


def test_lba_file_roundtrip_and_compatibility(batch, tmp_path):
    _, _, f = batch
    path = write_lba_dataset(tmp_path / "lba.h5", f)
    assert [p.name for p in tmp_path.iterdir()] == ["lba.h5"]             # no temporary file left
    g = read_lba_dataset(path)
    np.testing.assert_array_equal(g.coefficients, f.coefficients)
    assert g.irreps == f.irreps and g.ids == f.ids
    for name in ("complex_index", "residue_labels", "complex_ids", "affinity", "n_pocket", "receptor",
                 "ligand_file"):
        np.testing.assert_array_equal(getattr(g, name), getattr(f, name), err_msg=name)
    assert g.skipped == [tuple(map(str, row)) for row in f.skipped]
    assert g.attrs["lmax"] == 2 and g.attrs["kind"] == KIND
    plain = read_dataset(path)                                             # any steerable-data reader
    assert len(plain) == len(f) and plain.labels.tolist() == f.residue_labels.tolist()
    empty = read_lba_dataset(write_lba_dataset(tmp_path / "empty.h5", featurize_complexes([], {}, lmax=2)))
    assert empty.coefficients.shape == (0, f.irreps.dim) and len(empty.complex_ids) == 0
    write_dataset(tmp_path / "plain.h5", f.coefficients, f.irreps, attrs={"kind": "protein_neighbourhoods"})
    with pytest.raises(DatasetFormatError, match="plain.h5: not an LBA pocket dataset"):
        read_lba_dataset(tmp_path / "plain.h5")
    rows = (tmp_path / "skipped.tsv")
    write_skipped(rows, f.skipped)
    lines = rows.read_text().splitlines()
    assert lines[0] == "complex\treason" and len(lines) == 1 + len(f.skipped)
    # a model trained on protein neighbourhoods with the same transform can embed these
    protein = transform_attrs(2, 20, 10.0, list(CNOS), False, None, "orthonormal", True)
    assert transform_mismatches(f.attrs, protein) == []
    assert transform_mismatches(f.attrs, {**protein, "lmax": 6}) == ["lmax: data=2, model=6"]
    assert transform_mismatches(f.attrs, {**protein, "kind": "amino_acid_conformations"}) == [
        f"kind: data='{KIND}', model='amino_acid_conformations'"]


# ------------------------------------------------------------------------------------------------
# ATOM3D LMDB
# ------------------------------------------------------------------------------------------------
ATOM3D_SAMPLE = SHARED / "data" / "pdb" / "atom3d_lmdb_format_sample"
MISC = SHARED / "data" / "pdb" / "testdata_misc"


def test_atom3d_lmdb_sample_equals_parsed_files():
    pytest.importorskip("lmdb")
    if not ATOM3D_SAMPLE.is_dir():
        pytest.skip(f"{ATOM3D_SAMPLE} not available")
    db = Atom3DLMDB(ATOM3D_SAMPLE)
    assert len(db) == 4 and db.ids == ["11as.pdb", "117e.pdb", "2olx.pdb", "103l.pdb"]
    for i, pid in enumerate(["11as", "117e", "2olx", "103l"]):
        a = atom3d_structure(db[i]["atoms"], name=pid)
        b = parse_structure(MISC / f"atom3d__{pid}.cif.gz")                # the same entries as mmCIF
        for name in ("coords", "element", "atom_name", "residue_index", "chain", "resnum", "icode", "resname",
                     "is_hetero", "ca_index"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{pid} {name}")
    with pytest.raises(ComplexError, match="no 'atoms_protein' table"):
        db.complexes()[0].load()


def _atom3d_table(rows: list, columns: list) -> dict:
    return {"columns": columns, "index": list(range(len(rows))), "data": rows}


def _protein_table(path: Path) -> dict:
    """What ATOM3D's ``bp_to_df`` stores for a biopython structure (hydrogens and waters kept)."""
    from Bio.PDB import PDBParser

    text = gzip.decompress(path.read_bytes()).decode()
    import io

    st = PDBParser(QUIET=True).get_structure(path.stem, io.StringIO(text))
    cols = ["ensemble", "subunit", "structure", "model", "chain", "hetero", "insertion_code", "residue", "segid",
            "resname", "altloc", "occupancy", "bfactor", "x", "y", "z", "element", "name", "fullname",
            "serial_number"]
    rows = []
    for atom in st.get_atoms():
        res = atom.get_parent()
        x, y, z = (float(v) for v in atom.coord)
        rows.append([path.stem, 0, path.stem, res.get_parent().get_parent().serial_num, res.get_parent().id,
                     res.id[0], res.id[2], res.id[1], res.segid, res.resname, atom.altloc, atom.occupancy,
                     atom.bfactor, x, y, z, atom.element, atom.name, atom.fullname, atom.serial_number])
    return _atom3d_table(rows, cols)


def _ligand_table(lig) -> dict:
    """What ATOM3D's ``mol_to_df`` stores: RDKit's mixed-case symbols, plus a hydrogen."""
    cols = ["chain", "hetero", "insertion_code", "residue", "resname", "x", "y", "z", "element", "name"]
    rows = [["LIG", "", "", 999, "LIG", float(x), float(y), float(z), el.capitalize(), f"{el.capitalize()}{i + 1}"]
            for i, (el, (x, y, z)) in enumerate(zip(lig.element.tolist(), lig.coords.tolist()))]
    rows.append(["LIG", "", "", 999, "LIG", rows[0][5] + 1.0, rows[0][6], rows[0][7], "H", "H99"])
    return _atom3d_table(rows, cols)


def test_atom3d_lba_lmdb_matches_files(complexes, labels, tmp_path):
    lmdb = pytest.importorskip("lmdb")
    pids = ["1z9h", "2ohk"]
    env = lmdb.open(str(tmp_path / "lba"), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for i, pid in enumerate(pids):
            c = complexes[pid]
            item = {"id": pid, "atoms_protein": _protein_table(c.protein),
                    "atoms_ligand": _ligand_table(read_ligand(c.ligands)), "scores": {"neglog_aff": labels[pid]},
                    "types": {"id": "<class 'str'>"}}
            txn.put(str(i).encode(), gzip.compress(json.dumps(item).encode()))
        txn.put(b"num_examples", b"2")
        txn.put(b"serialization_format", b"json")
        txn.put(b"id_to_idx", json.dumps({p: i for i, p in enumerate(pids)}).encode())
    env.close()
    db = Atom3DLMDB(tmp_path / "lba")
    assert db.affinities() == {p: labels[p] for p in pids}
    a = featurize_complexes(db.complexes(), db.affinities(), lmax=2)
    b = featurize_complexes([complexes[p] for p in pids], labels, lmax=2)
    assert a.skipped == [] and a.ids == b.ids
    np.testing.assert_array_equal(a.n_pocket, b.n_pocket)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-5, atol=1e-6)
