"""`holovae prepare-lba --atom3d`: ATOM3D LBA LMDB datasets as input, ``--lists-out`` for
`holovae lba-split --lists`, and the reader's handling of the real LBA item layout.

Three tiny LMDB datasets ``train``, ``val``, ``test`` (two complexes each) are written in
``split-by-sequence-identity-30/data/`` as ATOM3D's ``make_lmdb_dataset`` writes them: keys
``0..n-1`` with gzipped JSON items, ``num_examples``, ``serialization_format``, ``id_to_idx``.
Items carry ``atoms_protein`` / ``atoms_pocket`` (biopython's atoms as ATOM3D's ``bp_to_df``
stores them: hydrogens and waters kept), ``atoms_ligand`` (RDKit's atoms as ``mol_to_df``
stores them), ``bonds``, ``id``, ``seq``, ``smiles``, ``scores`` and ``types``; ``scores`` is a
dict (ATOM3D's current ``prepare_lmdb.py``) in train and test and a pandas Series serialised
``orient="split"`` (its earlier one) in val. Built from the shared complexes; skipped when
``../shared`` or lmdb is missing.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from holovae.cli import main
from holovae.data.lba import Atom3DLMDB, atom3d_score, find_complexes, read_lba_dataset, read_pdbbind_index

SHARED = Path(__file__).resolve().parents[2] / "shared"
COMPLEXES = SHARED / "data" / "lba" / "complexes"
pytestmark = pytest.mark.skipif(not COMPLEXES.is_dir(), reason=f"{COMPLEXES} not available")
lmdb = pytest.importorskip("lmdb")

# small proteins with protein and pocket files and an SDF that RDKit reads
SPLITS = {"train": ("1k9q", "1imx"), "val": ("4yef", "1nlo"), "test": ("2w9r", "1nlp")}
IDS = sorted(i for ids in SPLITS.values() for i in ids)
TRANSFORM = ("--lmax", 2, "--n-max", 4)
_DF = "<class 'pandas.core.frame.DataFrame'>"
_BP_COLUMNS = ["ensemble", "subunit", "structure", "model", "chain", "hetero", "insertion_code", "residue", "segid",
               "resname", "altloc", "occupancy", "bfactor", "x", "y", "z", "element", "name", "fullname",
               "serial_number"]


def _cli(*args) -> int:
    return main([str(a) for a in args])


def _split_table(rows: list, columns: list) -> dict:
    """A DataFrame as pandas' ``to_json(orient="split")`` writes it."""
    return {"columns": columns, "index": list(range(len(rows))), "data": rows}


def _protein_table(path: Path) -> dict:
    """What ATOM3D's ``bp_to_df`` stores for a biopython structure (hydrogens and waters kept,
    coordinates to 6 decimals as ``to_json(double_precision=6)``)."""
    from Bio.PDB import PDBParser

    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    name = path.name.split(".")[0]
    st = PDBParser(QUIET=True).get_structure(name, io.StringIO(text))
    rows = []
    for atom in st.get_atoms():
        res = atom.get_parent()
        x, y, z = (round(float(v), 6) for v in atom.coord)
        rows.append([name, 0, name, res.get_parent().get_parent().serial_num, res.get_parent().id, res.id[0],
                     res.id[2], res.id[1], res.segid, res.resname, atom.altloc, float(atom.occupancy),
                     float(atom.bfactor), x, y, z, atom.element, atom.name, atom.fullname, atom.serial_number])
    return _split_table(rows, _BP_COLUMNS)


def _ligand_tables(path: Path) -> tuple[dict, dict, str]:
    """``(atoms, bonds, smiles)`` of an SDF as ATOM3D's ``mol_to_df`` stores them: RDKit's
    mixed-case symbols, hydrogens kept, names made up per element (``C1``, ``Cl1``)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromMolFile(str(path), sanitize=False, removeHs=False)
    conf, counts, rows = mol.GetConformer(), {}, []
    for i, a in enumerate(mol.GetAtoms()):
        el = a.GetSymbol()
        counts[el] = counts.get(el, 0) + 1
        p = conf.GetAtomPosition(i)
        rows.append([path.stem, 0, path.stem, path.stem, "LIG", "", "", 0, "LIG", "LIG", "", 1, 0,
                     round(p.x, 6), round(p.y, 6), round(p.z, 6), el, f"{el}{counts[el]}", f"{el}{counts[el]}", i])
    bonds = [[b.GetBeginAtomIdx(), b.GetEndAtomIdx(), float(b.GetBondTypeAsDouble())] for b in mol.GetBonds()]
    return (_split_table(rows, _BP_COLUMNS), _split_table(bonds, ["atom1", "atom2", "type"]),
            Chem.MolToSmiles(mol))


def _scores(pid: str, value: float, series: bool) -> dict:
    return {"name": pid, "index": ["neglog_aff"], "data": [value]} if series else {"neglog_aff": value}


def _write_lmdb(path: Path, items: list) -> Path:
    """ATOM3D's ``make_lmdb_dataset`` (json serialisation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for i, item in enumerate(items):
            txn.put(str(i).encode(), gzip.compress(json.dumps(item).encode()))
        txn.put(b"num_examples", str(len(items)).encode())
        txn.put(b"serialization_format", b"json")
        txn.put(b"id_to_idx", json.dumps({item["id"]: i for i, item in enumerate(items)}).encode())
    env.close()
    return path


def _item(c, value: float, series: bool, protein=None, pocket=None) -> dict:
    atoms, bonds, smiles = _ligand_tables(next(p for p in c.ligands if p.suffix == ".sdf"))
    item = {"atoms_protein": protein or _protein_table(c.protein), "atoms_pocket": pocket or _protein_table(c.pocket),
            "atoms_ligand": atoms, "bonds": bonds, "id": c.pdb_id, "seq": [[c.pdb_id, "A", "..."]],
            "smiles": smiles, "scores": _scores(c.pdb_id, value, series)}
    item["types"] = {k: (_DF if k.startswith("atoms") or k == "bonds" else f"<class '{type(v).__name__}'>")
                     for k, v in item.items()}
    item["types"]["types"] = "<class 'dict'>"
    return item


@pytest.fixture(scope="module")
def labels():
    return read_pdbbind_index(COMPLEXES / "manifest.csv")


@pytest.fixture(scope="module")
def complexes():
    return {c.pdb_id: c for c in find_complexes(COMPLEXES) if c.pdb_id in IDS}


@pytest.fixture(scope="module")
def work(tmp_path_factory, complexes, labels):
    """``(work dir, {split: LMDB folder})``: the LMDBs as in ``LBA-split-by-sequence-identity-30.tar.gz``."""
    pytest.importorskip("rdkit")
    pytest.importorskip("Bio")
    tmp = tmp_path_factory.mktemp("lba_atom3d")
    data = tmp / "split-by-sequence-identity-30" / "data"
    dirs = {}
    for name, pids in SPLITS.items():
        dirs[name] = _write_lmdb(data / name, [_item(complexes[p], labels[p], series=name == "val") for p in pids])
    (tmp / "ids.txt").write_text("\n".join(IDS) + "\n")
    return tmp, dirs


@pytest.fixture(scope="module")
def prepared(work):
    """prepare-lba on the three LMDBs (with --lists-out) and on the same complexes' folders."""
    tmp, dirs = work
    a = ("--out", tmp / "atom3d.h5", "--skipped", tmp / "atom3d_skipped.tsv")
    assert _cli("prepare-lba", *(x for d in dirs.values() for x in ("--atom3d", d)), *a, *TRANSFORM,
                "--lists-out", tmp / "lists", "--threads", 1, "--no-progress") == 0
    b = ("--out", tmp / "folders.h5", "--skipped", tmp / "folders_skipped.tsv")
    assert _cli("prepare-lba", "--complexes", COMPLEXES, "--ids", tmp / "ids.txt", *b, *TRANSFORM,
                "--threads", 1, "--no-progress") == 0
    return read_lba_dataset(tmp / "atom3d.h5"), read_lba_dataset(tmp / "folders.h5")


# ------------------------------------------------------------------------------------------------
# the reader on the real item layout
# ------------------------------------------------------------------------------------------------
def test_reader_on_lba_layout(work, labels):
    _, dirs = work
    for name, pids in SPLITS.items():
        db = Atom3DLMDB(dirs[name])
        assert len(db) == 2 and db.ids == list(pids)
        item = db[0]
        assert {"atoms_protein", "atoms_pocket", "atoms_ligand", "scores", "id", "types"} <= set(item)
        assert atom3d_score(item) == labels[pids[0]]                  # dict and Series-split scores
        assert db.affinities() == {p: labels[p] for p in pids}
    assert atom3d_score({"scores": None}) is None and atom3d_score({}) is None
    assert atom3d_score({"scores": {"index": ["neglog_aff"], "data": [None]}}) is None


def test_receptor_choice(work, complexes, labels, tmp_path):
    """A release whose atoms_protein holds only the pocket region: "larger" takes atoms_pocket
    when it is the fuller table (here the full protein, swapped in), "protein" takes atoms_protein."""
    c = complexes["1k9q"]
    full, pocket = _protein_table(c.protein), _protein_table(c.pocket)
    assert len(full["data"]) > len(pocket["data"])
    db = Atom3DLMDB(_write_lmdb(tmp_path / "swapped", [_item(c, labels["1k9q"], False, protein=pocket, pocket=full)]))
    by_choice = {}
    for receptor in ("larger", "protein", "pocket", "protein_or_pocket"):
        (cx,) = db.complexes(receptor=receptor)
        s, lig = cx.load()
        by_choice[receptor] = (cx.receptor_kind, s.n_residues)
        assert lig.n_atoms == 46                                      # heavy atoms only (manifest)
    ref, _ = c.load()
    assert by_choice["larger"] == ("pocket", ref.n_residues) == by_choice["pocket"]
    assert by_choice["protein"][0] == "protein" and by_choice["protein"][1] < ref.n_residues
    assert by_choice["protein_or_pocket"] == by_choice["protein"]
    # the normal layout: "larger" is atoms_protein
    (cx,) = Atom3DLMDB(work[1]["train"]).complexes(receptor="larger")[:1]
    cx.load()
    assert cx.receptor_kind == "protein"


# ------------------------------------------------------------------------------------------------
# prepare-lba --atom3d
# ------------------------------------------------------------------------------------------------
def test_atom3d_input_equals_complex_folders(prepared, labels):
    a, b = prepared
    assert a.complex_ids.tolist() == b.complex_ids.tolist() == IDS
    np.testing.assert_array_equal(a.affinity, [labels[i] for i in IDS])
    np.testing.assert_array_equal(a.affinity, b.affinity)
    assert a.ids == b.ids and a.irreps == b.irreps
    np.testing.assert_array_equal(a.n_pocket, b.n_pocket)
    np.testing.assert_array_equal(a.residue_labels, b.residue_labels)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-5, atol=1e-6)
    assert a.receptor.tolist() == ["protein"] * len(IDS)
    assert a.attrs["receptor_choice"] == "larger" and b.attrs["receptor_choice"] == "protein"
    assert a.attrs["lmax"] == 2 and a.attrs["n_max"] == 4 and a.skipped == []
    assert len(a.attrs["atom3d"]) == 3 and all(n == 2 for n in a.attrs["atom3d"].values())
    assert all("scores.neglog_aff" in t for t in a.attrs["affinity_tables"])


def test_index_override_pocket_receptor_and_unscored_items(work, complexes, labels, tmp_path):
    tmp, dirs = work
    table = tmp_path / "affinities.csv"
    table.write_text("pdb_id,neglog_aff\n1k9q,1.5\n1imx,2.5\n")
    common = (*TRANSFORM, "--index", table, "--receptor", "pocket", "--threads", 1, "--no-progress")
    assert _cli("prepare-lba", "--atom3d", dirs["train"], "--out", tmp_path / "a.h5", "--skipped", tmp_path / "a.tsv",
                *common) == 0
    (tmp_path / "train.txt").write_text("1k9q\n1imx\n")
    assert _cli("prepare-lba", "--complexes", COMPLEXES, "--ids", tmp_path / "train.txt", "--out", tmp_path / "b.h5",
                "--skipped", tmp_path / "b.tsv", *common) == 0
    a, b = read_lba_dataset(tmp_path / "a.h5"), read_lba_dataset(tmp_path / "b.h5")
    assert a.complex_ids.tolist() == b.complex_ids.tolist() == ["1imx", "1k9q"]
    np.testing.assert_array_equal(a.affinity, [2.5, 1.5])                  # --index, not the items' scores
    assert a.receptor.tolist() == b.receptor.tolist() == ["pocket", "pocket"] and a.ids == b.ids
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-5, atol=1e-6)
    assert a.attrs["affinity_tables"] == [str(table)]
    # an item without scores (ATOM3D's Scores transform stores None) is skipped with the reason
    unscored = _item(complexes["1k9q"], 0.0, False)
    unscored["scores"] = None
    mixed = _write_lmdb(tmp_path / "mixed", [unscored, _item(complexes["1imx"], labels["1imx"], False)])
    assert _cli("prepare-lba", "--atom3d", mixed, "--out", tmp_path / "c.h5", "--skipped", tmp_path / "c.tsv",
                *TRANSFORM, "--threads", 1, "--no-progress") == 0
    c = read_lba_dataset(tmp_path / "c.h5")
    assert c.complex_ids.tolist() == ["1imx"] and c.affinity.tolist() == [labels["1imx"]]
    assert c.skipped == [("1k9q", f"{mixed}[0]: no scores.neglog_aff in the item")]


def _pocket_file_residues(path: Path) -> set:
    """``(resnum, icode, resname)`` of the standard amino acids with N, CA (carbon) and C in a
    pocket file, read by Biopython (the source of the items' atoms_pocket tables here). Chains
    are left out: PDBbind's pocket files may name them differently from the protein files (1imx:
    blank vs A)."""
    from Bio.PDB import PDBParser

    from holovae.data.structures import STANDARD_AA

    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    st = PDBParser(QUIET=True).get_structure("p", io.StringIO(text))
    return {(res.id[1], res.id[2].strip(), res.resname) for res in st[0].get_residues()
            if res.id[0] == " " and res.resname in STANDARD_AA and all(n in res for n in ("N", "CA", "C"))
            and res["CA"].element == "C"}


def test_authors_protocol_takes_each_items_pocket_table(work, complexes, tmp_path):
    """``--protocol authors`` with ATOM3D input centres on the residues of each item's
    atoms_pocket (the authors' input); ``--pocket-cutoff`` makes it measure instead."""
    tmp, dirs = work
    common = ("--atom3d", dirs["train"], *TRANSFORM, "--threads", 1, "--no-progress", "--protocol", "authors")
    assert _cli("prepare-lba", *common, "--out", tmp_path / "a.h5", "--skipped", tmp_path / "a.tsv") == 0
    a = read_lba_dataset(tmp_path / "a.h5")
    assert a.attrs["pocket_rule"] == "listed" and a.attrs["protocol"] == "authors"
    for k, pid in enumerate(a.complex_ids.tolist()):
        rows = [i.split("|") for i in np.asarray(a.ids)[a.complex_index == k]]
        got = {(int(r[2]), r[3], r[4]) for r in rows}
        assert len(got) == len(rows)
        assert got == _pocket_file_residues(complexes[pid].pocket), pid
    assert _cli("prepare-lba", *common, "--pocket-cutoff", 6, "--out", tmp_path / "b.h5",
                "--skipped", tmp_path / "b.tsv") == 0
    b = read_lba_dataset(tmp_path / "b.h5")
    assert b.attrs["pocket_rule"] == "any_atom" and b.attrs["pocket_cutoff"] == 6.0
    assert (b.n_pocket < a.n_pocket).all()           # PDBbind's 10 Å pocket files here hold more than 6 Å


def test_lists_out_feed_lba_split(work, prepared):
    tmp, _ = work
    for name, pids in SPLITS.items():
        assert (tmp / "lists" / f"{name}.txt").read_text().split() == sorted(pids)
    out = tmp / "split.json"
    assert _cli("lba-split", "--complexes", COMPLEXES, "--lists", tmp / "lists", "--ids", tmp / "ids.txt",
                "--out", out) == 0
    split = json.loads(out.read_text())
    assert split["source"] == "atom3d-lists" and split["excluded"] == {}
    assert split["folds"] == [{name: sorted(pids) for name, pids in SPLITS.items()}]


def test_bad_inputs_exit_1_naming_the_path(work, tmp_path, caplog):
    tmp, dirs = work
    out = ("--out", tmp_path / "x.h5", "--skipped", tmp_path / "x.tsv", *TRANSFORM, "--no-progress")
    caplog.set_level(logging.ERROR, logger="holovae")

    def fails(*args) -> str:
        caplog.clear()
        assert _cli("prepare-lba", *args, *out) == 1
        return caplog.text

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not an LMDB\n")
    assert f"{plain}: not an LMDB dataset" in fails("--atom3d", dirs["train"], "--atom3d", plain)
    text = fails("--atom3d", plain / "notes.txt")
    assert f"{plain / 'notes.txt'}: not an LMDB database" in text
    data = dirs["train"].parent                          # the tarball's data/ folder, not a dataset
    text = fails("--atom3d", data)
    assert f"{data}: not an LMDB dataset" in text and "test, train, val" in text
    assert f"{tmp_path / 'missing'}: no such LMDB" in fails("--atom3d", tmp_path / "missing")
    text = fails("--atom3d", dirs["train"], "--atom3d", dirs["val"], "--lists-out", tmp_path / "lists")
    assert "--lists-out needs exactly three" in text and f"got 2: {dirs['train']}, {dirs['val']}" in text
    assert not (tmp_path / "lists").exists() and not (tmp_path / "x.h5").exists()
    assert "given twice" in fails("--atom3d", dirs["train"], "--atom3d", dirs["train"])
    assert "needs --atom3d" in fails("--complexes", COMPLEXES, "--lists-out", tmp_path / "lists")
    assert "--receptor larger applies to --atom3d" in fails("--complexes", COMPLEXES, "--receptor", "larger")
    with pytest.raises(SystemExit):                      # both inputs: argparse refuses
        _cli("prepare-lba", "--complexes", COMPLEXES, "--atom3d", dirs["train"], *out)
