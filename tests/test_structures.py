"""Structure parsing, neighbourhoods, secondary structure and `holovae prepare-structures`.

Synthetic PDB files written here always run; tests on real files from
``../shared/data/pdb/testdata_misc`` (and ``posebusters_raw_mmcif``) are skipped when that folder
is absent. Parsing tests run with both backends of :func:`parse_structure` (gemmi, biopython), and
both must give identical records on real files.
"""
from __future__ import annotations

import gzip
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from holovae.data.neighbourhoods import atom_channels, neighbourhoods, residue_clouds, residue_ids
from holovae.data.secondary import find_dssp, geometric_secondary, secondary_structure
from holovae.data.structures import StructureError, element_from_name, parse_structure

MISC = Path(__file__).resolve().parents[2] / "shared" / "data" / "pdb" / "testdata_misc"
POSEBUSTERS = MISC.parent / "posebusters_raw_mmcif"
needs_misc = pytest.mark.skipif(not MISC.is_dir(), reason=f"{MISC} not available")
BACKENDS = ["biopython", "gemmi"]
FIELDS = ("coords", "element", "atom_name", "residue_index", "chain", "resnum", "icode", "resname", "is_hetero",
          "ca_index")


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "gemmi" and importlib.util.find_spec("gemmi") is None:
        pytest.skip("gemmi not installed")
    return request.param


def _atom(serial, name, resname, chain, resnum, xyz, element, altloc=" ", occ=1.0, het=False):
    """One PDB ATOM/HETATM line (fixed columns; ``name`` already padded to 4 characters)."""
    rec = "HETATM" if het else "ATOM  "
    return (f"{rec}{serial:5d} {name:4s}{altloc}{resname:>3s} {chain}{resnum:4d}    "
            f"{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{occ:6.2f}{20.0:6.2f}          {element:>2s}\n")


def _residue(serial, resname, chain, resnum, origin, altloc=" ", occ=1.0, shift=0.0):
    """Backbone N, CA, C, O (+ CB) of one residue near ``origin``."""
    o = np.asarray(origin, float) + shift
    atoms = [(" N  ", (-1.2, 0.6, 0), "N"), (" CA ", (0, 0, 0), "C"), (" C  ", (1.3, 0.7, 0), "C"),
             (" O  ", (1.4, 1.9, 0), "O"), (" CB ", (0, -1.5, 0.3), "C")]
    return [_atom(serial + i, n, resname, chain, resnum, o + np.array(d), e, altloc, occ)
            for i, (n, d, e) in enumerate(atoms)]


def _synthetic(tmp_path, name="syn.pdb", element_column=True):
    """A small two-chain PDB: altlocs, a water, hydrogens, Se (MSE), Cl, Zn and Ca ions."""
    lines = ["HEADER    TEST\n"]
    lines += _residue(1, "ALA", "A", 1, (0, 0, 0))
    # residue 2: altloc A (occ 0.3) and B (occ 0.7), shifted apart by 0.5 Å
    lines += _residue(10, "SER", "A", 2, (3.8, 0, 0), altloc="A", occ=0.3)
    lines += _residue(20, "SER", "A", 2, (3.8, 0, 0), altloc="B", occ=0.7, shift=0.5)
    lines += _residue(30, "GLY", "A", 3, (7.6, 0, 0))
    lines.append(_atom(40, " H  ", "GLY", "A", 3, (7.0, -1.0, 0), "H"))
    lines.append(_atom(41, "HA2 ", "GLY", "A", 3, (7.6, -1.0, 1.0), "H"))
    lines += _residue(50, "MSE", "B", 1, (0, 5, 0))
    lines.append(_atom(55, "SE  ", "MSE", "B", 1, (0.5, 6.5, 1.0), "SE"))
    lines.append(_atom(60, "CL  ", " CL", "B", 101, (2, 3, 1), "CL", het=True))
    lines.append(_atom(61, "ZN  ", " ZN", "B", 102, (2, 2, 2), "ZN", het=True))
    lines.append(_atom(62, "CA  ", " CA", "B", 103, (1, 2, 3), "CA", het=True))
    lines.append(_atom(63, " O  ", "HOH", "B", 201, (4, 4, 4), "O", het=True))
    lines.append("END\n")
    if not element_column:
        lines = [ln[:76] + "\n" if ln.startswith(("ATOM", "HETATM")) else ln for ln in lines]
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


# ------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("element_column", [True, False])
def test_synthetic_parse(tmp_path, element_column, backend):
    s = parse_structure(_synthetic(tmp_path, element_column=element_column), backend=backend)
    assert "H" not in set(s.element) and "HOH" not in set(s.resname)
    # two-letter elements are never folded into S / C, with or without the element column
    by_name = {(r, a): e for r, a, e in zip(s.resname[s.residue_index], s.atom_name, s.element)}
    assert by_name[("MSE", "SE")] == "SE"
    assert by_name[("CL", "CL")] == "CL" and by_name[("ZN", "ZN")] == "ZN" and by_name[("CA", "CA")] == "CA"
    assert by_name[("ALA", "CA")] == "C"
    # altloc: the B conformer (occupancy 0.7, shifted by +0.5 Å) is kept, once per atom
    ser = np.flatnonzero(s.resname[s.residue_index] == "SER")
    assert len(ser) == 5
    ca = ser[s.atom_name[ser] == "CA"][0]
    np.testing.assert_allclose(s.coords[ca], [4.3, 0.5, 0.5], atol=1e-3)
    # the calcium ion is no Cα; the ions have no Cα index
    assert s.ca_index[s.resname == "CA"][0] == -1
    assert s.is_hetero[s.resname == "ZN"][0]


def test_drop_hetero(tmp_path, backend):
    s = parse_structure(_synthetic(tmp_path), keep_hetero=False, backend=backend)
    assert not s.is_hetero.any() and not {"ZN", "CL", "CA"} & set(s.resname)
    assert "MSE" in set(s.resname)          # written as ATOM records here, so not hetero


def test_element_from_name():
    assert element_from_name(" CA ", "ALA", aligned=True) == "C"
    assert element_from_name("CA  ", "CA", aligned=True) == "CA"
    assert element_from_name("SE  ", "MSE", aligned=True) == "SE"
    assert element_from_name("HG21", "THR", aligned=True) == "H"
    assert element_from_name("1HG2", "VAL", aligned=True) == "H"
    assert element_from_name("CA", "ALA", aligned=False) == "C"
    assert element_from_name("SE", "MSE", aligned=False) == "SE"
    assert element_from_name("CL1", "LIG", aligned=False) == "CL"
    assert element_from_name("ZN", "ZN", aligned=False) == "ZN"
    assert element_from_name("SD", "MET", aligned=False) == "S"


def test_errors_name_the_file(tmp_path, backend):
    good = _synthetic(tmp_path).read_bytes()
    gz = tmp_path / "trunc.pdb.gz"
    gz.write_bytes(gzip.compress(good)[:-30])                  # truncated stream
    with pytest.raises(StructureError, match="trunc.pdb.gz"):
        parse_structure(gz, backend=backend)
    bad = tmp_path / "corrupt.cif.gz"
    data = bytearray(gzip.compress(b"data_x\n" + good))
    data[20:40] = b"\x00" * 20                                   # corrupted deflate data
    bad.write_bytes(bytes(data))
    with pytest.raises(StructureError, match="corrupt.cif.gz"):
        parse_structure(bad, backend=backend)
    empty = tmp_path / "empty.pdb"
    empty.write_text("HEADER    NOTHING\nEND\n")
    with pytest.raises(StructureError, match="empty.pdb"):
        parse_structure(empty, backend=backend)
    ions = tmp_path / "ions.pdb"
    ions.write_text(_atom(1, "ZN  ", " ZN", "A", 1, (0, 0, 0), "ZN", het=True) + "END\n")
    with pytest.raises(StructureError, match="no Cα"):
        parse_structure(ions, backend=backend)
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("data_x\nloop_\n_atom_site.id\n_atom_site.Cartn_x\n1 2 3\n")
    with pytest.raises(StructureError, match="garbage.cif"):
        parse_structure(garbage, backend=backend)


@needs_misc
def test_real_two_letter_elements(backend):
    se = parse_structure(MISC / "biopython__1A8O.cif.gz", backend=backend)   # selenomethionine
    assert (se.element == "SE").sum() == 4
    ch, _ = atom_channels(se.element)
    assert (ch[se.element == "SE"] == -1).all()
    cl = parse_structure(MISC / "atom3d__103l.cif.gz", backend=backend)      # chloride ions
    assert (cl.element == "CL").sum() == 2
    zn = parse_structure(MISC / "biopython__7DDO.pdb.gz", backend=backend)   # PDB format, zinc
    assert (zn.element == "ZN").sum() == 1
    for s in (se, cl, zn):
        nb = neighbourhoods(s)
        atom_el = set(np.unique(s.element[np.isin(s.element, ["S", "C"])]))
        assert atom_el <= {"S", "C"}
        assert nb.channels.max() < 4


@needs_misc
def test_real_altloc_and_point_mutation(backend):
    s = parse_structure(MISC / "biopython__3JQH.cif.gz", backend=backend)   # residue 1: PRO 0.83 / SER 0.17
    assert s.resname[0] == "PRO" and (s.residue_index == 0).sum() == 7
    s = parse_structure(MISC / "biopython__7DDO.pdb.gz", backend=backend)   # HIS 228: altlocs A/B, 0.50 each
    r = np.flatnonzero((s.resnum == 228) & (s.chain == "A"))[0]
    names = s.atom_name[s.residue_index == r]
    assert len(names) == len(set(names))                     # one position per atom
    # the tie goes to the first label (A); its CA is atom 1711: 'CA AHIS A 228'
    with gzip.open(MISC / "biopython__7DDO.pdb.gz", "rt") as f:
        line = next(ln for ln in f if ln.startswith("ATOM   1711"))
    np.testing.assert_allclose(s.coords[s.ca_index[r]], [float(line[30:38]), float(line[38:46]),
                                                        float(line[46:54])], atol=1e-3)


@needs_misc
def test_nmr_first_model_only(backend):
    s = parse_structure(MISC / "biopython__1AS5.cif.gz", backend=backend)   # 14 models
    assert s.n_atoms == 185 and len(set(zip(s.chain, s.resnum))) == s.n_residues


def _assert_same(a, b, what):
    """Identical records: coordinates to 1e-3 Å, everything else (values and dtypes) exactly."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: {f} {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
        if f == "coords":
            np.testing.assert_allclose(x, y, atol=1e-3, err_msg=f"{what}: {f}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: {f}")


def _real_files():
    misc = sorted(MISC.glob("*.gz")) if MISC.is_dir() else []
    pose = sorted(POSEBUSTERS.glob("*.cif.gz"))[::13][:20] if POSEBUSTERS.is_dir() else []
    return misc + pose


# All 40 testdata_misc files and all 261 posebusters files gave identical records with both backends
# (checked once; here the misc files and every 13th posebusters file, ~20 s with biopython).
@needs_misc
@pytest.mark.skipif(importlib.util.find_spec("gemmi") is None, reason="gemmi not installed")
@pytest.mark.parametrize("path", _real_files(), ids=lambda p: p.name)
def test_backends_agree_on_real_files(path):
    out = {}
    for b in BACKENDS:
        try:
            out[b] = parse_structure(path, backend=b)
        except StructureError as e:                     # e.g. RNA only: "no Cα atom"
            out[b] = str(e).split(" (")[0]
    if isinstance(out["biopython"], str) or isinstance(out["gemmi"], str):
        assert out["biopython"] == out["gemmi"]
    else:
        _assert_same(out["biopython"], out["gemmi"], path.name)


@needs_misc
@pytest.mark.skipif(importlib.util.find_spec("gemmi") is None, reason="gemmi not installed")
@pytest.mark.parametrize("source", ["biopython__7DDO.pdb.gz", "biopython__1A8O.cif.gz", "biopython__3JQH.cif.gz"])
def test_backends_agree_on_pdb_without_element_column(tmp_path, source):
    """PDB text (mmCIF sources written as PDB by gemmi) with columns 77-78 blanked: the element
    comes from the aligned 4-character name (gemmi: ``padded_name``), e.g. SE of MSE in 1A8O."""
    import gemmi

    if source.endswith(".pdb.gz"):
        text = gzip.open(MISC / source, "rt").read()
    else:
        text = gemmi.read_structure(str(MISC / source)).make_pdb_string()
    for column in (True, False):
        lines = text.splitlines(True)
        if not column:
            lines = [ln[:76].rstrip() + "\n" if ln.startswith(("ATOM", "HETATM")) else ln for ln in lines]
        path = tmp_path / f"{source.split('.')[0]}_{column}.pdb"
        path.write_text("".join(lines))
        a, b = parse_structure(path, backend="biopython"), parse_structure(path, backend="gemmi")
        _assert_same(a, b, path.name)
    if "1A8O" in source:
        assert (b.element == "SE").sum() == 4


def _mmcif_text(x: str = "1.000", auth_seq_id: str = "1") -> str:
    """A four-atom alanine as mmCIF; ``x`` and ``auth_seq_id`` of its Cα as given."""
    lines = ["data_t\nloop_\n"] + [f"_atom_site.{k}\n" for k in (
        "group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id label_seq_id "
        "pdbx_PDB_ins_code Cartn_x Cartn_y Cartn_z occupancy B_iso_or_equiv auth_seq_id auth_asym_id "
        "pdbx_PDB_model_num").split()]
    for i, (name, el) in enumerate([("N", "N"), ("CA", "C"), ("C", "C"), ("O", "O")]):
        xi, seq = (x, auth_seq_id) if name == "CA" else (f"{i:.3f}", "1")
        lines.append(f"ATOM {i + 1} {el} {name} . ALA A 1 ? {xi} 1.000 2.000 1.00 10.0 {seq} A 1\n")
    return "".join(lines) + "#\nloop_\n_software.name\n_software.version\nrefmac 5.8\n"


def _mmcif_rows(rows) -> str:
    """mmCIF text of ``(group, element, name, altloc, resname, chain, resnum, icode, occupancy,
    model)`` atom rows, coordinates made up from the row number."""
    lines = ["data_t\nloop_\n"] + [f"_atom_site.{k}\n" for k in (
        "group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id label_seq_id "
        "pdbx_PDB_ins_code Cartn_x Cartn_y Cartn_z occupancy B_iso_or_equiv auth_seq_id auth_asym_id "
        "pdbx_PDB_model_num").split()]
    for i, (group, el, name, alt, res, chain, num, icode, occ, model) in enumerate(rows):
        lines.append(f"{group} {i + 1} {el} {name} {alt} {res} {chain} {num} {icode} {i * 0.7:.3f} "
                     f"{(i % 5) * 1.1:.3f} {(i % 3) * 0.9:.3f} {occ} 10.0 {num} {chain} {model}\n")
    return "".join(lines) + "#\n"


_TRICKY_ROWS = [
    # ALA 1 of chain A, its CB in altlocs B/A of equal occupancy (the tie goes to A)
    ("ATOM", "N", "N", ".", "ALA", "A", 1, "?", 1.0, 1), ("ATOM", "C", "CA", ".", "ALA", "A", 1, "?", 1.0, 1),
    ("ATOM", "C", "C", ".", "ALA", "A", 1, "?", 1.0, 1), ("ATOM", "O", "O", ".", "ALA", "A", 1, "?", 1.0, 1),
    ("ATOM", "C", "CB", "B", "ALA", "A", 1, "?", 0.5, 1), ("ATOM", "C", "CB", "A", "ALA", "A", 1, "?", 0.5, 1),
    # a point mutation at 2: SER 0.3 / GLY 0.7 (GLY kept), altlocs A/B, each with its own name list
    ("ATOM", "N", "N", "A", "SER", "A", 2, "?", 0.3, 1), ("ATOM", "C", "CA", "A", "SER", "A", 2, "?", 0.3, 1),
    ("ATOM", "C", "C", "A", "SER", "A", 2, "?", 0.3, 1), ("ATOM", "O", "OG", "A", "SER", "A", 2, "?", 0.3, 1),
    ("ATOM", "N", "N", "B", "GLY", "A", 2, "?", 0.7, 1), ("ATOM", "C", "CA", "B", "GLY", "A", 2, "?", 0.7, 1),
    ("ATOM", "C", "C", "B", "GLY", "A", 2, "?", 0.7, 1), ("ATOM", "O", "O", "B", "GLY", "A", 2, "?", 0.7, 1),
    # an insertion code
    ("ATOM", "N", "N", ".", "VAL", "A", 2, "B", 1.0, 1), ("ATOM", "C", "CA", ".", "VAL", "A", 2, "B", 1.0, 1),
    ("ATOM", "C", "C", ".", "VAL", "A", 2, "B", 1.0, 1),
    # chain B, then chain A again (merged into A), residue 1 of A reappearing with more atoms
    ("ATOM", "N", "N", ".", "LEU", "B", 7, "?", 1.0, 1), ("ATOM", "C", "CA", ".", "LEU", "B", 7, "?", 1.0, 1),
    ("ATOM", "C", "CG", ".", "ALA", "A", 1, "?", 1.0, 1),
    # a ligand and a zinc numbered like a residue, and a water
    ("HETATM", "C", "C1", ".", "LIG", "A", 1, "?", 1.0, 1), ("HETATM", "Zn", "ZN", ".", "ZN", "A", 1, "?", 1.0, 1),
    ("HETATM", "O", "O", ".", "HOH", "A", 90, "?", 1.0, 1),
    # a second model (ignored)
    ("ATOM", "N", "N", ".", "ALA", "A", 1, "?", 1.0, 2), ("ATOM", "C", "CA", ".", "ALA", "A", 1, "?", 1.0, 2),
]


@pytest.mark.skipif(importlib.util.find_spec("gemmi") is None, reason="gemmi not installed")
def test_gemmi_columns_group_atoms_as_the_atom_loop(tmp_path, monkeypatch):
    """The numpy path over gemmi's FlatStructure columns against the per-atom loop it replaces
    (and biopython): altlocs and their ties, point mutations, insertion codes, duplicate
    names, split chains, reappearing residues, hetero groups, models; names that do not fit
    the columns' 8 bytes take the loop."""
    import holovae.data.structures as structures

    real = structures._atoms_gemmi_flat
    taken = []
    monkeypatch.setattr(structures, "_atoms_gemmi_flat", lambda *a: taken.append(real(*a)) or taken[-1])
    long_name = [r if i != 2 else r[:2] + ("CLONGNAME",) + r[3:] for i, r in enumerate(_TRICKY_ROWS)]
    # biopython refuses a duplicated name without altloc: that row only where it is not compared
    duplicate = (_TRICKY_ROWS[:17] + [("ATOM", "C", "C", ".", "VAL", "A", 2, "B", 0.9, 1)] + _TRICKY_ROWS[17:20]
                 + [("ATOM", "C", "CA", ".", "ALA", "A", 1, "?", 0.2, 1)] + _TRICKY_ROWS[20:])
    files = [(tmp_path / "tricky.cif", _mmcif_rows(_TRICKY_ROWS)), (tmp_path / "long.cif", _mmcif_rows(long_name)),
             (tmp_path / "duplicate.cif", _mmcif_rows(duplicate))]
    for path, text in files:
        path.write_text(text)
    files = [p for p, _ in files] + [p for p in _real_files() if ".cif" in p.name]
    for path in files:
        taken.clear()
        try:
            columns = parse_structure(path, backend="gemmi")
        except StructureError as e:
            columns = str(e)
        assert len(taken) == 1 and (taken[0] is None) == (path.name == "long.cif"), path.name
        monkeypatch.setattr(structures, "_atoms_gemmi_flat", lambda *a: None)
        try:
            loop = parse_structure(path, backend="gemmi")
        except StructureError as e:
            loop = str(e)
        monkeypatch.setattr(structures, "_atoms_gemmi_flat", lambda *a: taken.append(real(*a)) or taken[-1])
        if isinstance(loop, str):
            assert columns == loop
            continue
        _assert_same(columns, loop, path.name)
        np.testing.assert_array_equal(columns.coords, loop.coords)
    s = parse_structure(tmp_path / "tricky.cif", backend="gemmi")
    _assert_same(s, parse_structure(tmp_path / "tricky.cif", backend="biopython"), "tricky.cif")
    assert s.resname.tolist() == ["ALA", "GLY", "VAL", "LIG", "ZN", "LEU"]
    assert s.atom_name[s.residue_index == 0].tolist() == ["N", "CA", "C", "O", "CB", "CG"]
    assert s.coords[s.residue_index == 0][4, 0] == pytest.approx(5 * 0.7, abs=1e-3)   # CB altloc A
    assert s.atom_name[s.residue_index == 2].tolist() == ["N", "CA", "C"]
    d = parse_structure(tmp_path / "duplicate.cif", backend="gemmi")   # the first C, the first CA kept
    for r, n in ((0, 5), (2, 3)):                                        # (rows before the added ones)
        assert d.atom_name[d.residue_index == r].tolist() == s.atom_name[s.residue_index == r].tolist()
        np.testing.assert_array_equal(d.coords[d.residue_index == r][:n], s.coords[s.residue_index == r][:n])


def _edit_ca_line(path, edit) -> None:
    """Apply ``edit(line) -> line`` to the first Cα record of a PDB file."""
    lines = path.read_text().splitlines(True)
    k = next(i for i, ln in enumerate(lines) if ln.startswith("ATOM") and ln[12:16] == " CA ")
    lines[k] = edit(lines[k])
    path.write_text("".join(lines))


# Before the record checks, gemmi read blank coordinates as 0 and "1.2x45" as 1.2, both
# backends read "nan", a blank residue number made gemmi's path raise a bare TypeError, and a
# file cut at a line boundary was a valid partial structure.
@pytest.mark.parametrize("edit, message", [
    (lambda ln: ln[:30] + " " * 24 + ln[54:], "blank x coordinate in columns 31-38"),
    (lambda ln: ln[:30] + "  1.2x45" + ln[38:], r"non-numeric \('1.2x45'\) x coordinate"),
    (lambda ln: ln[:38] + "     nan" + ln[46:], r"non-numeric \('nan'\) y coordinate"),
    (lambda ln: ln[:46] + "    -inf" + ln[54:], r"non-numeric \('-inf'\) z coordinate"),
    (lambda ln: ln[:22] + "  X " + ln[26:], "residue number 'X' in columns 23-26 is not an integer"),
    (lambda ln: ln[:22] + "    " + ln[26:], "residue number '' in columns 23-26"),
    (lambda ln: ln[:54] + "  x.xx" + ln[60:], "non-numeric occupancy 'x.xx'"),
    (lambda ln: ln[:44] + "\n", "ends at column 44, before the end of its coordinates"),
    (lambda ln: ln[:8] + "é" + ln[9:], "non-ASCII character in column 9"),     # gemmi: 2 bytes, fields shift
], ids=["blank", "junk", "nan", "inf", "resnum", "blank-resnum", "occupancy", "cut-line", "non-ascii"])
def test_pdb_records_the_parsers_misread_are_refused(tmp_path, backend, edit, message):
    path = _synthetic(tmp_path)
    _edit_ca_line(path, edit)                               # the first Cα: line 3
    with pytest.raises(StructureError, match=rf"syn.pdb: line 3 \(ATOM record\): .*{message}"):
        parse_structure(path, backend=backend)


def test_pdb_without_end_record_is_truncated(tmp_path, backend):
    lines = _synthetic(tmp_path).read_text().splitlines(True)
    cut = tmp_path / "cut.pdb"
    cut.write_text("".join(lines[:12]))                     # at a line boundary: every record complete
    with pytest.raises(StructureError, match="cut.pdb: no END record: the file is truncated"):
        parse_structure(cut, backend=backend)
    cut.write_text("".join(lines[:12]) + "END\n")
    assert parse_structure(cut, backend=backend).resname.tolist() == ["ALA", "SER"]


@pytest.mark.parametrize("x, seq, message", [
    ("?", "1", "(non-finite|could not convert)"), ("1.2x45", "1", "(non-finite|could not convert)"),
    ("1e39", "1", "non-finite"),                               # finite as float64, inf as float32
    ("1.000", "X", "(not an integer|invalid literal)"),        # gemmi: residue number None
], ids=["null", "junk", "overflow", "resnum"])
def test_mmcif_numbers_the_parsers_misread_are_refused(tmp_path, backend, x, seq, message):
    good = tmp_path / "good.cif"
    good.write_text(_mmcif_text())
    assert parse_structure(good, backend=backend).n_atoms == 4
    bad = tmp_path / "bad.cif"
    bad.write_text(_mmcif_text(x, seq))
    with pytest.raises(StructureError, match=f"bad.cif: .*{message}"):
        parse_structure(bad, backend=backend)


def test_truncated_plain_mmcif(tmp_path, backend):
    """A plain (not gzipped) mmCIF cut inside the _atom_site loop is malformed for both backends.
    Known difference: cut *after* a complete _atom_site loop, biopython's FastMMCIFParser (which
    reads only that loop) accepts the file while gemmi (which tokenizes the whole file) rejects it;
    we keep gemmi's answer -- a truncated file should not pass silently. (mmCIF has no END record:
    a plain file cut at a row boundary of its _atom_site loop cannot be told from a complete one.)"""
    text = _mmcif_text("0.000")
    full = tmp_path / "full.cif"
    full.write_text(text)
    assert parse_structure(full, backend=backend).n_atoms == 4
    cut = tmp_path / "cut.cif"
    cut.write_text(text[: text.index("2.000 1.00 10.0 1 A 1\nATOM 3")])
    with pytest.raises(StructureError, match="cut.cif"):
        parse_structure(cut, backend=backend)
    after = tmp_path / "after.cif"
    after.write_text(text[:-6])                                   # inside the _software loop
    if backend == "gemmi":
        with pytest.raises(StructureError, match="after.cif"):
            parse_structure(after, backend=backend)
    else:
        assert parse_structure(after, backend=backend).n_atoms == 4


def test_backend_choice(tmp_path, monkeypatch, caplog):
    path = _synthetic(tmp_path)
    with pytest.raises(ValueError, match="backend"):
        parse_structure(path, backend="pymol")
    monkeypatch.setitem(sys.modules, "gemmi", None)                # import gemmi -> ImportError
    with caplog.at_level(logging.DEBUG, logger="holovae.data.structures"):
        s = parse_structure(path)                                  # auto -> biopython
    assert "biopython" in caplog.text and s.n_atoms > 0


# ------------------------------------------------------------------------------------------
# neighbourhoods
# ------------------------------------------------------------------------------------------
@needs_misc
def test_neighbourhood_counts_brute_force():
    s = parse_structure(MISC / "biopython__1A7G.cif.gz")
    nb = neighbourhoods(s, r_max=10.0)
    ch, _ = atom_channels(s.element)
    d = np.linalg.norm(s.coords[:, None, :].astype(np.float64) - s.coords[None, :, :], axis=2)
    ca = s.ca_index[nb.residue]
    inside = (d[ca] <= 10.0) & (ch >= 0)[None, :]
    inside[np.arange(len(ca)), ca] = False                    # the central Cα is dropped
    np.testing.assert_array_equal(np.diff(nb.offsets), inside.sum(1))
    # points are centred at the Cα and lie in the ball; channels match the elements
    b = 5
    sel = np.flatnonzero(inside[b])
    np.testing.assert_allclose(nb.points[nb.offsets[b]:nb.offsets[b + 1]], s.coords[sel] - s.coords[ca[b]], atol=1e-5)
    np.testing.assert_array_equal(nb.channels[nb.offsets[b]:nb.offsets[b + 1]], ch[sel])
    assert np.linalg.norm(nb.points, axis=1).max() <= 10.0 + 1e-5


def test_channels_and_other(tmp_path):
    s = parse_structure(_synthetic(tmp_path))
    ch, n = atom_channels(s.element, ["C", "N", "O", "S"])
    assert n == 4 and (ch[s.element == "SE"] == -1).all() and (ch[s.element == "C"] == 0).all()
    ch, n = atom_channels(s.element, ["C", "N", "O", "S"], other_channel=True)
    assert n == 5 and (ch[np.isin(s.element, ["SE", "CL", "ZN", "CA"])] == 4).all()
    nb = neighbourhoods(s, other_channel=True)
    assert nb.n_channels == 5 and nb.channels.max() == 4


def test_missing_backbone_is_skipped(tmp_path, backend):
    path = _synthetic(tmp_path)
    lines = [ln for ln in path.read_text().splitlines(True) if not (" C   GLY" in ln)]
    path.write_text("".join(lines))
    s = parse_structure(path, backend=backend)
    nb = neighbourhoods(s)
    assert [s.resname[r] for r in nb.residue] == ["ALA", "SER"]          # MSE is not standard
    assert [(s.resname[r], why) for r, why in nb.skipped] == [("GLY", "missing backbone atom(s) C")]
    assert residue_ids(s, nb.residue)[0] == "syn|A|1||ALA"


def test_residue_with_an_atom_far_from_its_ca_is_skipped(tmp_path):
    """A coordinate corrupted into a valid number ("9999.000"): the atom would silently fall out
    of its residue cloud (beyond r_max) and out of every neighbourhood. No standard residue
    spans more than ~7.5 Å from its Cα, so such a residue is skipped, in both kinds of cloud."""
    path = _synthetic(tmp_path)
    text = path.read_text()
    cb = next(ln for ln in text.splitlines(True) if ln[12:16] == " CB " and ln[17:20] == "ALA")
    path.write_text(text.replace(cb, cb[:30] + "9999.000" + cb[38:]))
    s = parse_structure(path)
    for clouds in (neighbourhoods(s), residue_clouds(s)):
        assert [s.resname[r] for r in clouds.residue] == ["SER", "GLY"]
        [(r, why)] = clouds.skipped
        assert s.resname[r] == "ALA" and why.startswith("atom CB lies 9999 Å from its Cα")


def test_residue_clouds(tmp_path):
    s = parse_structure(_synthetic(tmp_path))
    rc = residue_clouds(s)
    assert np.diff(rc.offsets).tolist() == [4, 4, 4]       # N, C, O, CB: the Cα is dropped
    assert np.linalg.norm(rc.points, axis=1).max() < 3.0


# ------------------------------------------------------------------------------------------
# secondary structure
# ------------------------------------------------------------------------------------------
@needs_misc
def test_geometric_secondary_finds_helix_and_strand():
    s = parse_structure(MISC / "biotite__5zng.cif.gz")
    ss, method = secondary_structure(s, method="geometry")
    assert method == "geometry" and set(ss) <= {"H", "E", "L", "-"}
    assert (ss == "H").sum() > 10 and (ss == "E").sum() > 10
    assert (geometric_secondary(s) == ss).all()


# ------------------------------------------------------------------------------------------
# rotation equivariance and the CLI
# ------------------------------------------------------------------------------------------
@needs_misc
def test_rotating_structure_rotates_coefficients():
    from holovae.so3 import rotate_flat
    from holovae.transforms.zernike import zernike_irreps, zernike_transform

    s = parse_structure(MISC / "biopython__3JQH.cif.gz")
    R = torch.tensor([[0.36, 0.48, -0.8], [-0.8, 0.6, 0.0], [0.48, 0.64, 0.6]], dtype=torch.float64)
    kw = dict(n_channels=4, lmax=6, n_max=20, r_max=10.0, dtype=torch.float64)

    def coeffs(st):
        nb = neighbourhoods(st)
        return zernike_transform(torch.from_numpy(nb.points.astype(np.float64)), torch.from_numpy(nb.channels),
                                 torch.from_numpy(nb.offsets), **kw)

    f = coeffs(s)
    s.coords = (s.coords.astype(np.float64) @ R.numpy().T).astype(np.float32)
    g = coeffs(s)
    expected = rotate_flat(f, zernike_irreps(4, 6, 20), R)
    assert float((g - expected).norm() / expected.norm()) < 1e-4


def test_cli_writes_shard_and_skipped(tmp_path):
    from holovae.cli import main
    from holovae.data.hdf5 import read_dataset

    good = [_synthetic(tmp_path, "one.pdb")]
    if MISC.is_dir():
        good.append(MISC / "biopython__3JQH.cif.gz")
    bad = tmp_path / "broken.cif.gz"
    bad.write_bytes(gzip.compress(b"data_broken\n" + b"x" * 5000)[:-40])
    listing = tmp_path / "list.txt"
    listing.write_text(f"{good[-1]}\n")
    out, skipped = tmp_path / "shard.h5", tmp_path / "skipped.tsv"
    rc = main(["prepare-structures", str(good[0]), str(bad), "--from-list", str(listing), "--out", str(out),
               "--skipped", str(skipped), "--no-progress", "--secondary", "geometry"])
    assert rc == 0
    ds = read_dataset(out, expected_irreps="44x0e+40x1e+40x2e+36x3e+36x4e+32x5e+32x6e")
    assert ds.coefficients.shape[1] == 1708
    assert len(ds) == len(ds.ids) == len(ds.extra["secondary_structure"]) == len(ds.extra["residue_name"])
    assert "one|A|1||ALA" in ds.ids.tolist()
    assert ds.attrs["lmax"] == 6 and ds.attrs["n_max"] == 20 and ds.attrs["elements"] == ["C", "N", "O", "S"]
    assert set(ds.attrs["source_sha256"]) == {p.name for p in good} | {bad.name}
    rows = [ln.split("\t") for ln in skipped.read_text().splitlines()]
    assert rows[0] == ["file", "chain", "resnum", "reason"]
    assert any(r[0] == str(bad) and "broken.cif.gz" in r[3] for r in rows[1:])


@needs_misc
@pytest.mark.skipif(find_dssp() is None, reason="no DSSP executable (mkdssp) on PATH")
def test_dssp_agrees_with_geometry():
    s = parse_structure(MISC / "biotite__5zng.cif.gz")
    ss, method = secondary_structure(s, MISC / "biotite__5zng.cif.gz", method="auto")
    aa = ss != "-"
    assert method == "dssp" and (ss[aa] == geometric_secondary(s)[aa]).mean() > 0.75


# ------------------------------------------------------------------------------------------
# every file isolated, every failure with a reason, no empty output
# ------------------------------------------------------------------------------------------
SMALL = dict(lmax="2", n_max="4")


def _prepare(files, out, *extra, clouds="neighbourhood", skipped=None) -> int:
    from holovae.cli import main

    args = ["prepare-structures", *map(str, files), "--out", str(out), "--clouds", clouds, "--lmax", SMALL["lmax"],
            "--n-max", SMALL["n_max"], "--secondary", "geometry", "--no-progress", *extra]
    return main(args + (["--skipped", str(skipped)] if skipped else []))


def _rows_by_file(path) -> dict:
    """``{structure id: (ids, coefficients)}`` of a prepared shard. (Coefficients compare up to
    float32 rounding: the transform batches clouds of similar sizes, so the order of a row's
    sums depends on the other files in its chunk.)"""
    from holovae.data.hdf5 import read_dataset

    ds = read_dataset(path)
    names = np.array([i.split("|")[0] for i in ds.ids])
    return {n: (ds.ids[names == n].tolist(), ds.coefficients.numpy()[names == n]) for n in np.unique(names)}


def _skipped_files(path) -> dict:
    """``{file: reason}`` of the file-level rows of a skipped TSV."""
    rows = [ln.split("\t") for ln in Path(path).read_text().splitlines()[1:]]
    return {r[0]: r[3] for r in rows if r[1] == ""}


def _bad_inputs(tmp_path) -> dict:
    """``{file: expected reason}``: files that must be skipped, each for its own reason."""
    text = _synthetic(tmp_path, "base.pdb").read_text()
    ca = next(ln for ln in text.splitlines(True) if ln[12:16] == " CA ")
    bad = {}
    p = tmp_path / "nan.pdb"
    p.write_text(text.replace(ca, ca[:30] + "     nan" + ca[38:]))
    bad[p] = "non-numeric ('nan') x coordinate"
    p = tmp_path / "hetatm.pdb"
    p.write_text(text.replace("ATOM  ", "HETATM"))
    bad[p] = "no row: its 3 standard amino acid(s) are all HETATM records"
    p = tmp_path / "cut.pdb"
    p.write_text(text[: text.index(ca) + len(ca)])
    bad[p] = "no END record"
    bad[tmp_path / "mistyped.pdb"] = "mistyped.pdb: no such file"
    return bad


@pytest.mark.parametrize("clouds", ["neighbourhood", "residue"])
def test_cli_isolates_every_bad_file(tmp_path, clouds):
    """Bad files mixed with good ones (the same chunk of the batched transform): the good files'
    rows are those of a clean run, each bad file is listed with its reason, rc 0. Before: one
    file with a NaN coordinate ended a residue-cloud run (rc 1, no output) and the HETATM-only
    file gave 0 rows without a reason."""
    from holovae.data.embedded import embedded_structure_paths

    good = [_synthetic(tmp_path, "one.pdb"), embedded_structure_paths()[2]]
    bad = _bad_inputs(tmp_path)
    assert _prepare(good, tmp_path / "clean.h5", clouds=clouds) == 0
    bads = list(bad)
    mixed = bads[:2] + [good[0]] + bads[2:] + [good[1]]
    assert _prepare(mixed, tmp_path / "mixed.h5", clouds=clouds, skipped=tmp_path / "skipped.tsv") == 0
    clean, got = _rows_by_file(tmp_path / "clean.h5"), _rows_by_file(tmp_path / "mixed.h5")
    assert sorted(got) == sorted(clean) == ["7loe", "one"]
    for name, (ids, coefficients) in clean.items():
        assert got[name][0] == ids
        np.testing.assert_allclose(got[name][1], coefficients, rtol=0, atol=1e-5 * np.abs(coefficients).max())
    reasons = _skipped_files(tmp_path / "skipped.tsv")
    assert sorted(reasons) == sorted(str(p) for p in bad)
    for p, why in bad.items():
        assert why in reasons[str(p)] and str(p) in reasons[str(p)], reasons[str(p)]


@pytest.mark.parametrize("clouds", ["neighbourhood", "residue"])
def test_a_failing_transform_chunk_blames_only_its_file(tmp_path, monkeypatch, clouds):
    """The transform runs on chunks of several files, outside the per-file guard; when a chunk
    fails its files are transformed one by one. A file whose clouds hold a NaN point (injected
    past the parser, which refuses NaN itself) is skipped with the transform's reason; the
    other files of its chunk keep the rows of a clean run."""
    import holovae.data.neighbourhoods as nb
    from holovae.data.embedded import embedded_structure_paths

    good = [_synthetic(tmp_path, "one.pdb"), embedded_structure_paths()[2]]
    poison = _synthetic(tmp_path, "poison.pdb")
    assert _prepare(good, tmp_path / "clean.h5", clouds=clouds) == 0
    for name in ("neighbourhoods", "residue_clouds"):
        original = getattr(nb, name)

        def poisoned(s, *args, _original=original, **kw):
            c = _original(s, *args, **kw)
            if s.name == "poison":
                c.points[0] = np.nan
            return c
        monkeypatch.setattr(nb, name, poisoned)
    assert _prepare([good[0], poison, good[1]], tmp_path / "mixed.h5", clouds=clouds,
                    skipped=tmp_path / "skipped.tsv") == 0
    clean, got = _rows_by_file(tmp_path / "clean.h5"), _rows_by_file(tmp_path / "mixed.h5")
    assert sorted(got) == ["7loe", "one"]
    for name, (ids, coefficients) in clean.items():
        assert got[name][0] == ids
        np.testing.assert_allclose(got[name][1], coefficients, rtol=0, atol=1e-5 * np.abs(coefficients).max())
    reason = _skipped_files(tmp_path / "skipped.tsv")[str(poison)]
    assert reason.startswith(f"{poison}: Zernike transform failed") and "NaN" in reason


@pytest.mark.parametrize("elements, message", [
    ("Q,Z", "'Q', 'Z' are not element symbols"),       # before: every coefficient 0, rc 0
    ("C,C", "C repeated"),                             # before: every file skipped, empty HDF5, rc 0
    ("C,N,O,H", "hydrogens are removed when parsing"),
])
def test_bad_element_lists_fail_before_any_file(tmp_path, caplog, elements, message):
    caplog.set_level(logging.INFO, logger="holovae")
    assert _prepare([_synthetic(tmp_path)], tmp_path / "x.h5", "--elements", elements) == 1
    assert message in caplog.text and "skipping" not in caplog.text
    assert not (tmp_path / "x.h5").exists()


def test_a_run_where_every_input_failed_fails(tmp_path, caplog):
    """Before: a mistyped list skipped every file and wrote a 0-row HDF5 with rc 0, which a
    workflow marks done and `embed` fails on hours later (torch.cat of an empty list)."""
    caplog.set_level(logging.INFO, logger="holovae")
    bad = _bad_inputs(tmp_path)
    out, skipped = tmp_path / "test" / "shard0.h5", tmp_path / "test" / "shard0.skipped.tsv"
    out.parent.mkdir()
    assert _prepare(list(bad), out, "--split", "test", clouds="residue", skipped=skipped) == 1
    assert not out.exists()
    assert f"test split ({out}): no row from its 4 input file(s), nothing written" in caplog.text
    for p in bad:                                       # every input named with its reason
        assert str(p) in caplog.text
    assert sorted(_skipped_files(skipped)) == sorted(str(p) for p in bad)


def test_merge_refuses_shards_without_rows(tmp_path, caplog):
    from holovae.cli import main
    from holovae.data.hdf5 import write_dataset

    shards = [write_dataset(tmp_path / f"shard{i}.h5", np.zeros((0, 2), np.float32), "2x0e", ids=[]) for i in range(2)]
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "test.h5")]) == 1
    assert f"{tmp_path / 'test.h5'}: its 2 shard(s) hold no row" in caplog.text
    assert not (tmp_path / "test.h5").exists()
    write_dataset(shards[1], np.ones((3, 2), np.float32), "2x0e", ids=["a", "b", "c"])
    assert main(["merge", *map(str, shards), "--out", str(tmp_path / "test.h5")]) == 0


def test_keeping_the_central_ca_is_for_residue_clouds_only(tmp_path, caplog):
    assert _prepare([_synthetic(tmp_path)], tmp_path / "x.h5", "--no-drop-ca") == 1
    assert "neighbourhood clouds always leave out the central Cα" in caplog.text


def test_empty_clouds_are_skipped_with_their_reason(tmp_path):
    """A cloud without an atom of the channel elements would be a row of zeros. With sulfur as
    the only channel, residue clouds of CYS and MET (SG, SD) are the only non-empty ones."""
    from holovae.data.embedded import embedded_structure_paths
    from holovae.data.hdf5 import read_dataset

    path = embedded_structure_paths()[2]
    assert _prepare([path], tmp_path / "s.h5", "--elements", "S", clouds="residue",
                    skipped=tmp_path / "s.tsv") == 0
    ds = read_dataset(tmp_path / "s.h5")
    with gzip.open(path, "rt") as f:                     # CYS/MET residues with N, CA, C, from the file itself
        backbone = {}
        for ln in f:
            p = ln.split()
            if ln.startswith("ATOM") and p[5] in ("CYS", "MET") and p[3] in ("N", "CA", "C") and p[-1] == "1":
                backbone.setdefault((p[-3], p[-5], p[5]), set()).add(p[3])
    expected = sorted(f"7loe|{c}|{n}||{r}" for (c, n, r), atoms in backbone.items() if len(atoms) == 3)
    assert sorted(ds.ids.tolist()) == expected and len(expected) > 3
    rows = [ln.split("\t") for ln in (tmp_path / "s.tsv").read_text().splitlines()[1:]]
    assert rows and all(r[3] == "no atom of the channel elements (S) in its cloud" for r in rows)
    synthetic = _synthetic(tmp_path)                     # no S at all (MSE has Se): nothing to write
    assert _prepare([synthetic], tmp_path / "x.h5", "--elements", "S", clouds="residue",
                    skipped=tmp_path / "x.tsv") == 1
    assert "none of its 3 residue clouds has an atom of S" in _skipped_files(tmp_path / "x.tsv")[str(synthetic)]


def test_the_vectorised_record_check_misses_no_bad_record():
    """The PDB record check runs a vectorised prefilter and the per-record reference only on the
    records it flags: on 20,000 records with random characters in the checked fields (and cut or
    CRLF-terminated lines), every record the reference refuses is flagged."""
    from holovae.data.structures import _record_problem, _suspect_records

    rng = np.random.default_rng(5)
    base = _atom(1, " CA ", "ALA", "A", 12, (12.345, -6.789, 0.5), "C").rstrip("\n").ljust(80)
    alphabet = list(" 0123456789.-+eEx?\r\tAZé")
    records = []
    for _ in range(20000):
        chars = list(base)
        a, b = [(22, 26), (30, 38), (38, 46), (46, 54), (54, 60)][rng.integers(5)]
        for k in range(a, b):
            if rng.random() < 0.4:
                chars[k] = alphabet[rng.integers(len(alphabet))]
        line = "".join(chars)
        if rng.random() < 0.1:
            line = line[: rng.integers(20, 80)]
        if rng.random() < 0.1:
            line = line.rstrip() + "\r"
        records.append(line)
    bad = {k for k, line in enumerate(records) if _record_problem(line)}
    assert 0.3 < len(bad) / len(records) < 0.9                  # both kinds are well represented
    assert bad <= set(_suspect_records(records).tolist())
