"""PDB / mmCIF files (plain or ``.gz``) -> a compact numpy record of one protein structure.

Parsing is gemmi's (``backend="gemmi"``, the default when importable; ~4x faster) or
biopython's (``PDBParser`` / ``FastMMCIFParser`` / ``MMCIFParser``, quiet); both give the same
record (the gemmi path groups residues and atoms the way biopython's builder does). We keep

* the first model only (NMR ensembles carry many),
* no waters and no hydrogens (element H or D),
* one position per atom: for alternate locations the altloc with the highest occupancy
  (ties: the first altloc label in sort order, so the choice is deterministic); for
  point-mutation residues (biopython's ``DisorderedResidue``) the residue form with the
  highest mean occupancy,
* hetero residues (ligands, ions, modified residues such as MSE) unless ``keep_hetero=False``.

Input is checked before it is trusted (both backends alike, :class:`StructureError` naming the
file, line and field): in PDB files every ``ATOM``/``HETATM`` record of the first model must
have three numeric coordinates, an integer (or hybrid-36) residue number and a blank or numeric
occupancy -- gemmi reads blank coordinates as 0 and ``1.2x4`` as 1.2 -- and the file must
have its ``END`` record (a file cut at a line boundary is otherwise a valid, partial
structure); in every format coordinates must be finite (gemmi reads unparseable mmCIF numbers
as NaN) and residue numbers integers.

Elements come from the element column (PDB columns 77-78, mmCIF ``type_symbol``). When a file
lacks that column, :func:`element_from_name` guesses from the atom name in a way that keeps
two-letter elements (SE, CL, ZN, FE, MG, BR, ...) out of the S and C channels -- the authors'
parser took the first letter, which put selenium into S and chlorine into C.
"""
from __future__ import annotations

import gzip
import io
import logging
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Structure", "StructureError", "parse_structure", "element_from_name", "STANDARD_AA",
           "WATER_NAMES", "structure_id", "read_text", "tight_strings"]

logger = logging.getLogger(__name__)

STANDARD_AA = frozenset("ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split())
_NUCLEOTIDES = frozenset("A C G U I DA DC DG DT DI".split())
WATER_NAMES = frozenset({"HOH", "WAT", "H2O", "DOD", "D2O", "TIP", "TIP3", "SOL"})
_HYDROGEN = frozenset({"H", "D"})

# Every element symbol (upper case), to validate what the element column or a guess gives.
ELEMENTS = frozenset("""H HE LI BE B C N O F NE NA MG AL SI P S CL AR K CA SC TI V CR MN FE CO NI CU
ZN GA GE AS SE BR KR RB SR Y ZR NB MO TC RU RH PD AG CD IN SN SB TE I XE CS BA LA CE PR ND PM SM EU
GD TB DY HO ER TM YB LU HF TA W RE OS IR PT AU HG TL PB BI PO AT RN FR RA AC TH PA U NP PU AM CM
BK CF ES FM MD NO LR D""".split())
# Two-letter elements that ligand atom names commonly start with ("CL1", "BR2", "FE1"): in an
# unaligned (mmCIF-style) name of a non-standard residue these prefixes mean the element.
_LIGAND_TWO_LETTER = frozenset({"CL", "BR", "SE", "ZN", "FE", "MG", "MN", "CU", "NI", "CO"})


class StructureError(ValueError):
    """A structure file cannot be used; the message names the file and the reason."""


@dataclass
class Structure:
    """One model of a structure as flat arrays (A atoms, R residues).

    Per atom: ``coords [A, 3]`` float32 (Å), ``element [A]`` str (upper case, e.g. ``"C"``,
    ``"SE"``), ``atom_name [A]`` str, ``residue_index [A]`` int32 (into the residue arrays).
    Per residue: ``chain [R]``, ``resnum [R]`` int32, ``icode [R]`` (``""`` when blank),
    ``resname [R]`` str, ``is_hetero [R]`` bool, ``ca_index [R]`` int64 (atom index of the Cα,
    -1 if none). Atoms of one residue are contiguous, residues in file order.
    """

    name: str
    coords: np.ndarray
    element: np.ndarray
    atom_name: np.ndarray
    residue_index: np.ndarray
    chain: np.ndarray
    resnum: np.ndarray
    icode: np.ndarray
    resname: np.ndarray
    is_hetero: np.ndarray
    ca_index: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.coords.shape[0])

    @property
    def n_residues(self) -> int:
        return int(self.resname.shape[0])


def structure_id(path) -> str:
    """File name without the structure/compression suffixes: ``/x/1abc.cif.gz`` -> ``1abc``."""
    name = Path(path).name
    for suffix in (".gz", ".cif", ".mmcif", ".pdb", ".ent"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def element_from_name(fullname: str, resname: str, aligned: bool) -> str:
    """Guess an element from an atom name (only used when the file has no element column).

    ``aligned``: a 4-character PDB name (columns 13-16), where by convention one-letter
    elements start in column 14 (``" CA "`` is Cα) and two-letter ones in column 13
    (``"CA  "`` is calcium); 4-character names starting in column 13 with H/D are hydrogens
    (``"HG21"``). Unaligned (mmCIF-style) names: a name equal to its residue name is an ion
    (``ZN``/``ZN``); standard amino acids and nucleotides hold one-letter elements only; in other
    residues ``SE`` (MSE) and ligand prefixes ``CL1``, ``BR2``, ``FE`` ... are two-letter.
    Returns an upper-case symbol, ``"X"`` when nothing fits.
    """
    name = fullname.strip().upper()
    res = resname.strip().upper()
    if not name:
        return "X"
    if name == res and name in ELEMENTS:
        return name
    if aligned and len(fullname) == 4:
        first = fullname[0]
        if first == " " or first.isdigit():
            # one-letter element in column 14 ("1HG2" has its digit in column 13)
            cand = fullname[1].upper()
            return cand if cand in ELEMENTS else "X"
        if len(name) == 4 and name[0] in _HYDROGEN:
            return name[0]
        two = fullname[:2].upper()
        if two in ELEMENTS:
            return two
        return name[0] if name[0] in ELEMENTS else "X"
    # unaligned name
    stripped = name.lstrip("0123456789")
    if not stripped:
        return "X"
    if res in STANDARD_AA or res in _NUCLEOTIDES:
        return stripped[0] if stripped[0] in ELEMENTS else "X"
    if stripped[:2] in _LIGAND_TWO_LETTER and (len(stripped) == 2 or stripped[2:].isdigit()):
        return stripped[:2]
    return stripped[0] if stripped[0] in ELEMENTS else "X"


def read_text(path: Path) -> str:
    """The file's text; gzip is recognised by its magic bytes, not only by the suffix."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()   # a truncated/corrupted stream raises EOFError / BadGzipFile here
    with open(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read()


def _is_mmcif(path: Path, text: str) -> bool:
    lower = path.name.lower().removesuffix(".gz")
    if lower.endswith((".cif", ".mmcif")):
        return True
    if lower.endswith((".pdb", ".ent")):
        return False
    return text.lstrip().startswith("data_")


# A fixed-point number as PDB writes coordinates and occupancies ("%8.3f"): no nan/inf, no
# exponent, no trailing junk (Python's float() would also take "1_0" and "nan").
_PDB_NUMBER = re.compile(r" *[-+]?(?:\d+\.?\d*|\.\d+) *")
# A residue number: an integer, or hybrid-36 beyond 9999 (a letter and three alphanumerics).
_PDB_RESNUM = re.compile(r" *-?\d+ *|[A-Za-z][0-9A-Za-z]{3}")
_COORD_FIELDS = (("x", 30, 38), ("y", 38, 46), ("z", 46, 54))


def _record_problem(line: str) -> str | None:
    """What is wrong with one ``ATOM``/``HETATM`` record (see :func:`_check_pdb_records`), or
    None. The reference check, ~7 µs a record: :func:`_suspect_records` picks the records to
    give it."""
    line = line.rstrip("\r")
    if not line.isascii():                       # the parsers count bytes, columns are characters
        column = next(k for k, ch in enumerate(line, start=1) if not ch.isascii())
        return (f"non-ASCII character in column {column} (fixed-column records are ASCII; a multi-byte "
                "character shifts every later field)")
    if len(line.rstrip()) < 54:
        return f"ends at column {len(line.rstrip())}, before the end of its coordinates (column 54): truncated file?"
    for axis, start, stop in _COORD_FIELDS:
        if not _PDB_NUMBER.fullmatch(line, start, stop):
            field = line[start:stop].strip()
            what = "blank" if not field else f"non-numeric ({field!r})"
            return f"{what} {axis} coordinate in columns {start + 1}-{stop}"
    if not _PDB_RESNUM.fullmatch(line, 22, 26):
        return f"residue number {line[22:26].strip()!r} in columns 23-26 is not an integer"
    if not _PDB_NUMBER.fullmatch(line, 54, 60) and line[54:60].strip():
        return f"non-numeric occupancy {line[54:60].strip()!r} in columns 55-60"
    return None


def _not_numbers(field: np.ndarray) -> np.ndarray:
    """``[N]`` bool: which rows of ``field [N, W]`` (code points, ``\\0`` for blank padding) are
    not one number as :data:`_PDB_NUMBER`: one run of characters, an optional leading sign,
    digits, at most one dot, blanks around it."""
    blank = (field == 32) | (field == 0)          # a carriage return is no blank: flagged, sorted out there
    digit = (field >= 48) & (field <= 57)
    dot, sign = field == 46, (field == 45) | (field == 43)
    solid = ~blank
    first = solid.argmax(1)
    last = field.shape[1] - 1 - solid[:, ::-1].argmax(1)
    n_sign = sign.sum(1)
    good = ((blank | digit | dot | sign).all(1) & (last - first + 1 == solid.sum(1)) & (dot.sum(1) <= 1)
            & ((n_sign == 0) | ((n_sign == 1) & sign[np.arange(len(field)), first])) & digit.any(1))
    return ~good


def _suspect_records(records: list) -> np.ndarray:
    """Indices of the records :func:`_record_problem` must look at: a vectorised superset of the
    bad ones (every bad record is among them; checked on 2 x 10^5 random records), ~10x cheaper
    than checking each record."""
    n = len(records)
    c = np.array(records, dtype="U80").view(np.uint32).reshape(n, 80)      # \0-padded
    bad = (c[:, 53:] == 32).__or__(c[:, 53:] == 0).all(1)                # ends before column 54
    if not "".join(records).isascii():
        bad |= ~np.fromiter((r.isascii() for r in records), dtype=bool, count=n)
    # x, y, z, occupancy and residue number as rows of one [5n, 8] array, left-padded with \0
    fields = np.zeros((5, n, 8), dtype=np.uint32)
    fields[:3] = c[:, 30:54].reshape(n, 3, 8).transpose(1, 0, 2)
    fields[3, :, 2:] = c[:, 54:60]
    fields[4, :, 4:] = c[:, 22:26]
    not_number = _not_numbers(fields.reshape(5 * n, 8)).reshape(5, n)
    occupancy_blank = ((fields[3] == 32) | (fields[3] == 0)).all(1)
    res = c[:, 22:26]
    letter = ((res >= 65) & (res <= 90)) | ((res >= 97) & (res <= 122))
    hybrid36 = letter[:, 0] & (letter | ((res >= 48) & (res <= 57)))[:, 1:].all(1)
    integer = ~not_number[4] & ~((res == 43) | (res == 46)).any(1)        # no '+', no '.'
    bad |= not_number[:3].any(0) | (not_number[3] & ~occupancy_blank) | ~(integer | hybrid36)
    return np.flatnonzero(bad)


def _check_pdb_records(path: Path, text: str) -> None:
    """Raise :class:`StructureError` for what the parsers would read silently wrong: an
    ``ATOM``/``HETATM`` record of the first model cut before its coordinates' end (column 54),
    a blank or non-numeric coordinate (columns 31-54; gemmi reads blank as 0, ``1.2x4`` as
    1.2), a residue number (columns 23-26) that is neither an integer nor hybrid-36, a
    non-numeric occupancy (columns 55-60, decides between altlocs), a non-ASCII character in a
    record (gemmi slices bytes: every later field would shift), and a file without its ``END``
    record (cut at a line boundary: the rest of the file is a valid partial structure; not
    asked of a file without atom records, which the parsers call empty). Serial numbers and
    B-factors are not used and not checked."""
    lines = text.split("\n")                         # as gemmi splits
    end = next((k for k, line in enumerate(lines) if line.startswith("ENDMDL")), len(lines)) \
        if "\nENDMDL" in text else len(lines)        # only the first model is read
    numbers = [k for k, line in enumerate(lines[:end]) if line.startswith(("ATOM  ", "HETATM"))]
    if not numbers:
        return
    for k in _suspect_records([lines[k] for k in numbers]):
        line = lines[numbers[k]]
        problem = _record_problem(line)
        if problem:
            raise StructureError(f"{path}: line {numbers[k] + 1} ({line[:6].strip()} record): {problem}")
    if not any(line.rstrip(" \t\r") == "END" for line in reversed(lines)):   # usually the last line
        raise StructureError(f"{path}: no END record: the file is truncated (a complete PDB file ends "
                             "with END; add it if the file is complete)")


def _residue_numbers(path: Path, residues) -> np.ndarray:
    """``resnum [R]`` int32 of ``[(chain, is_hetero, resnum, icode, resname)]``; a number that is
    missing or not an integer (gemmi gives ``None`` for an mmCIF ``auth_seq_id`` of ``X``)
    raises :class:`StructureError` naming the residue."""
    numbers = np.asarray([r[2] for r in residues])
    if numbers.dtype.kind in "iu" and (len(numbers) == 0 or (numbers.min() >= -2**31 and numbers.max() < 2**31)):
        return numbers.astype(np.int32)
    out = np.zeros(len(residues), dtype=np.int32)
    for i, (chain, _, number, icode, resname) in enumerate(residues):   # finds and names the bad one
        if not isinstance(number, (int, np.integer)) or not -2**31 <= int(number) < 2**31:
            raise StructureError(f"{path}: residue {resname} of chain {chain!r} has residue number {number!r}, "
                                 "not an integer")
        out[i] = number
    return out


def _has_element_column(text: str, mmcif: bool) -> bool:
    """Whether every atom record carries an element (else names are guessed for the whole file)."""
    if mmcif:
        return "_atom_site.type_symbol" in text
    for line in text.splitlines():
        if line.startswith(("ATOM  ", "HETATM")) and not line[76:78].strip():
            return False
    return True


def tight_strings(a: np.ndarray) -> np.ndarray:
    """A string array with the narrowest dtype for its contents (as ``np.asarray(list, str)``)."""
    return a.astype(f"<U{max(1, int(np.char.str_len(a).max(initial=0)))}")


def _best_altloc(candidates):
    """``[(label, occupancy, atom)]`` of one atom name -> the atom with the highest occupancy;
    ties go to the first label in sort order (blank sorts first)."""
    return min(candidates, key=lambda c: (-c[1], c[0]))[2]


def _best_form(forms):
    """``{resname: atoms}`` of one point-mutation residue -> the resname whose atoms (all
    altlocs, hydrogens included) have the highest mean occupancy; ties: first resname in sort
    order. Occupancies are rounded (to 1e-4) so that float32 (gemmi) and float64 (biopython)
    storage of the same file decide alike."""
    def score(item):
        return -round(sum(item[1]) / max(1, len(item[1])), 4), item[0]
    return min(forms.items(), key=score)[0]


def _parse_biopython(path: Path, text: str, mmcif: bool, fast: bool):
    """biopython's structure. For mmCIF, ``fast`` uses ``FastMMCIFParser`` (reads only the
    ``_atom_site`` loop, splitting on whitespace: 5x faster, and all we need), falling back to the
    full ``MMCIFParser`` (complete CIF tokenizer) if it fails."""
    from Bio.PDB import FastMMCIFParser, MMCIFParser, PDBParser

    sid = structure_id(path)
    if not mmcif:
        return PDBParser(QUIET=True, PERMISSIVE=True).get_structure(sid, io.StringIO(text))
    if fast:
        try:
            return FastMMCIFParser(QUIET=True).get_structure(sid, io.StringIO(text))
        except Exception:
            pass
    return MMCIFParser(QUIET=True).get_structure(sid, io.StringIO(text))


def _atoms_biopython(path: Path, text: str, mmcif: bool, fast: bool):
    """First model as flat lists, altlocs and point mutations resolved (the format both backends
    return): ``residues [(chain, is_hetero, resnum, icode, resname)]`` and per atom ``names``,
    ``fullnames`` (PDB: the 4-character field), ``elements`` (as in the file, may be empty),
    ``coords`` and ``res_of`` (index into ``residues``)."""
    structure = _parse_biopython(path, text, mmcif, fast)
    models = list(structure)
    if not models:
        raise StructureError(f"{path}: empty structure (no models/atoms)")
    residues, names, fullnames, elements, coords, res_of = [], [], [], [], [], []
    for ch in models[0]:
        for residue in ch:
            if residue.is_disordered() == 2:        # DisorderedResidue: point mutation
                occ = {name: [a.get_occupancy() or 0.0 for a in form.get_unpacked_list()]
                       for name, form in residue.child_dict.items()}
                residue = residue.child_dict[_best_form(occ)]
            for atom in residue:
                if atom.is_disordered():
                    atom = _best_altloc([(k, a.get_occupancy() or 0.0, a) for k, a in atom.child_dict.items()])
                names.append(atom.get_id())
                fullnames.append(atom.fullname)
                elements.append(atom.element or "")
                coords.append(atom.coord)
                res_of.append(len(residues))
            hetflag, seq, ins = residue.id
            residues.append((ch.id, hetflag.strip() != "", seq, ins.strip(), residue.get_resname()))
    return residues, names, fullnames, elements, coords, res_of


def _check_gemmi_numbers(path: Path, model) -> None:
    """gemmi reads an unparseable mmCIF number (``?``, ``1.2x4``) as NaN where biopython's
    readers raise; so every atom of the model, the altlocs that will not be kept included,
    must have finite coordinates and occupancy, as with biopython."""
    for ch in model:
        for res in ch:
            for a in res:
                p = a.pos
                if not (math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(p.z) and math.isfinite(a.occ)):
                    raise StructureError(f"{path}: atom {a.name!r} of {res.name} {res.seqid} in chain {ch.name!r} has "
                                         f"an unreadable or non-finite coordinate or occupancy "
                                         f"(x, y, z, occupancy = {p.x}, {p.y}, {p.z}, {a.occ})")


def _atoms_gemmi(path: Path, text: str, mmcif: bool, fast: bool):
    """As :func:`_atoms_biopython`, from gemmi, grouped the way biopython groups: chain parts
    with the same name are merged (in order of first appearance); within a chain residues are
    keyed by (ATOM, number, icode) or (HETATM + name, number, icode), so same-key ATOM residues
    of different names are a point mutation (gemmi's microheterogeneity) and same-key residues
    that reappear later are merged; within a residue atoms are keyed by name (first appearance
    order) with their altlocs as candidates (the first atom of each label counts). Waters and
    hydrogens are dropped by :func:`parse_structure` for both backends alike (rather than by
    gemmi's ``remove_waters``/``remove_hydrogens``, whose water list and inferred elements differ
    slightly). ``fast`` is unused: gemmi tokenizes the whole file, so a plain-text mmCIF truncated
    after its ``_atom_site`` loop is malformed here while ``FastMMCIFParser`` accepts it."""
    import gemmi

    if mmcif:
        st = gemmi.make_structure_from_block(gemmi.cif.read_string(text).sole_block())
    else:
        st = gemmi.read_pdb_string(text)
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise StructureError(f"{path}: empty structure (no models/atoms)")
    st.merge_chain_parts()
    columns = _atoms_gemmi_flat(path, st, mmcif)
    if columns is not None:
        return columns
    if mmcif:                                  # PDB numbers were checked in the text already
        _check_gemmi_numbers(path, st[0])
    residues, names, fullnames, elements, coords, res_of = [], [], [], [], [], []
    for ch in st[0]:
        groups: dict = {}                      # key -> {resname: [gemmi atoms]}
        for res in ch:
            key = ("H_" + res.name if res.het_flag == "H" else " ", res.seqid.num, res.seqid.icode)
            groups.setdefault(key, {}).setdefault(res.name, []).extend(res)
        for (flag, seq, ins), forms in groups.items():
            rname = next(iter(forms)) if len(forms) == 1 else _best_form(
                {name: [a.occ for a in atoms] for name, atoms in forms.items()})
            picked = forms[rname]
            nm = [a.name for a in picked]
            if len(set(nm)) < len(nm) or any(a.altloc != "\0" for a in picked):
                by_name: dict = {}             # atom name -> {altloc: atom}
                for name, a in zip(nm, picked):
                    by_name.setdefault(name, {}).setdefault(a.altloc if a.altloc != "\0" else " ", a)
                picked = [_best_altloc([(k, x.occ, x) for k, x in alts.items()]) for alts in by_name.values()]
                nm = list(by_name)
            names += nm
            fullnames += nm if mmcif else [a.padded_name().ljust(4) for a in picked]
            elements += [a.element.name for a in picked]
            coords += [a.pos.tolist() for a in picked]
            res_of += [len(residues)] * len(picked)
            residues.append((ch.name or " ", flag != " ", seq, ins.strip(), rname))
    return residues, names, fullnames, elements, coords, res_of


def _flat_codes(a: np.ndarray) -> np.ndarray:
    """gemmi FlatStructure's ``int8 [N, 8]`` NUL-padded names as ``uint64 [N]`` (equal names,
    equal codes: integer keys sort fast; ``.view("S8")`` gives the names back as bytes)."""
    return np.ascontiguousarray(a).view("<u8").ravel()


def _first_appearance(key: np.ndarray):
    """``key [N]`` (any sortable dtype) -> ``(ids [N], first [G])``: ids numbered by first
    appearance, and the first position of each."""
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[order] = np.arange(len(first))
    return rank[inv.ravel()], first[order]


def _atoms_gemmi_flat(path: Path, st, mmcif: bool):
    """:func:`_atoms_gemmi`'s result from gemmi's ``FlatStructure`` columns, with numpy instead
    of a Python loop over atoms: the same grouping (residue keys, point mutations, altlocs), the
    per-atom fields as arrays. Returns None where the columns cannot hold the answer -- PDB files
    (their 4-character names), names that fill gemmi's 8-byte fields, a residue number gemmi
    could not read -- and the caller then takes the loop."""
    import gemmi

    if not mmcif:
        return None
    try:
        flat = gemmi.FlatStructure(st)
    except RuntimeError:                                           # e.g. an atom name of 8+ characters
        return None
    model = np.flatnonzero(flat.model_num == st[0].num)
    names8, res8, chain8 = flat.atom_names[model], flat.residue_names[model], flat.chain_ids[model]
    if names8[:, 7].any() or res8[:, 7].any() or chain8[:, 7].any():
        return None
    seq = flat.resnums[model]
    if (seq == np.iinfo(np.int32).min).any():                   # gemmi's "no number"
        return None
    pos, occ = flat.pos[model], flat.occ[model]
    if not (np.isfinite(pos).all() and np.isfinite(occ).all()):
        _check_gemmi_numbers(path, st[0])                          # names the first bad atom
    name_c, res_c, chain_c = _flat_codes(names8), _flat_codes(res8), _flat_codes(chain8)
    het = flat.het_flags[model] == ord("H")
    icode, altloc = flat.icodes[model], flat.altlocs[model]
    n = len(name_c)

    # runs of atoms with the same chain, residue name, number and icode (gemmi's residues);
    # residue groups: (chain, ATOM or HETATM + name, number, icode) by first appearance
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = ((chain_c[1:] != chain_c[:-1]) | (res_c[1:] != res_c[:-1]) | (seq[1:] != seq[:-1])
                   | (icode[1:] != icode[:-1]) | (het[1:] != het[:-1]))
    starts = np.flatnonzero(new_run)
    run_len = np.diff(np.r_[starts, n])
    run_key = np.zeros(len(starts), dtype=[("c", "<u8"), ("h", "<u8"), ("s", "<i4"), ("i", "i1")])
    run_key["c"], run_key["s"], run_key["i"] = chain_c[starts], seq[starts], icode[starts]
    run_key["h"] = np.where(het[starts], res_c[starts], 0)
    run_group, group_first = _first_appearance(run_key)
    group = np.repeat(run_group, run_len)
    n_groups = len(group_first)
    head = starts[group_first]                                   # a group's first atom

    # point mutations: a group with several residue names keeps the form of highest mean
    # occupancy (over all its atoms and altlocs)
    form_key = np.zeros(len(starts), dtype=[("g", "<i8"), ("r", "<u8")])
    form_key["g"], form_key["r"] = run_group, res_c[starts]
    run_form, form_first = _first_appearance(form_key)
    chosen = res_c[head].copy()
    for g in np.flatnonzero(np.bincount(run_group[form_first], minlength=n_groups) > 1).tolist():
        options = {}
        for f in np.flatnonzero(run_group[form_first] == g).tolist():
            atoms = np.repeat(run_form == f, run_len)
            options[res_c[starts[form_first[f]]:][:1].view("S8")[0].decode()] = occ[atoms].astype(np.float64).tolist()
        chosen[g] = np.frombuffer(_best_form(options).encode().ljust(8, b"\0"), "<u8")[0]
    idx = np.flatnonzero(res_c == chosen[group])

    # within a group one atom per name: the altloc of highest occupancy (ties: first label)
    g_k = group[idx]
    _, name_id = np.unique(name_c[idx], return_inverse=True)
    slot, slot_first = _first_appearance(g_k * (int(name_id.max(initial=0)) + 1) + name_id.ravel())
    if len(slot_first) < len(idx) or (altloc[idx] != 0).any():
        label = np.where(altloc[idx] == 0, ord(" "), altloc[idx]).astype(np.int64)
        _, cand = np.unique(slot * 256 + label, return_index=True)   # first atom of each label
        order = np.lexsort((label[cand], -occ[idx][cand].astype(np.float64), slot[cand]))
        cand = cand[order]
        best = cand[np.r_[True, slot[cand][1:] != slot[cand][:-1]]]
        picked = np.empty(len(slot_first), dtype=np.int64)
        picked[slot[best]] = idx[best]
        # groups by first appearance, names by first appearance within the group
        out = picked[np.lexsort((slot_first, g_k[slot_first]))]
    else:
        out = idx[np.argsort(g_k, kind="stable")]
    chains, resnames = chain_c[head].view("S8"), chosen.view("S8")
    residues = [(c.decode() or " ", h, q, chr(i).strip() if i else "", r.decode())
                for c, h, q, i, r in zip(chains.tolist(), het[head].tolist(), seq[head].tolist(),
                                         icode[head].tolist(), resnames.tolist())]
    atom_names = name_c[out].view("S8").astype(str)
    return residues, atom_names, atom_names, flat.element_names[model][out].astype(str), pos[out], group[out]


_BACKENDS = {"biopython": _atoms_biopython, "gemmi": _atoms_gemmi}


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        try:
            import gemmi  # noqa: F401
            return "gemmi"
        except ImportError:
            logger.debug("gemmi is not importable; parsing structures with biopython")
            return "biopython"
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be 'auto', 'gemmi' or 'biopython', not {backend!r}")
    return backend


def parse_structure(path, keep_hetero: bool = True, fast_mmcif: bool = True, backend: str = "auto") -> Structure:
    """Read one PDB/mmCIF file (plain or gzipped) into a :class:`Structure` (first model).

    ``backend``: ``"gemmi"`` (parsing ~4x faster: its reader alone is ~8x faster than
    biopython's), ``"biopython"``, or ``"auto"`` (gemmi when importable). Both give the same
    record (tests/test_structures.py compares them on real files).
    ``fast_mmcif`` (biopython only): read mmCIF with ``FastMMCIFParser`` (see
    :func:`_parse_biopython`).

    Raises :class:`StructureError` naming the file for unreadable/corrupted/truncated input
    (see the module docstring for the checks), non-finite coordinates, residue numbers that
    are not integers, a structure with no atoms left after filtering, and one without any Cα.
    """
    path = Path(path)
    backend = _resolve_backend(backend)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, UnicodeError, zlib.error) as e:
        raise StructureError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    mmcif = _is_mmcif(path, text)
    if not mmcif:
        _check_pdb_records(path, text)
    try:
        with np.errstate(over="ignore"):      # biopython casts 1e39 to float32 inf: refused below
            residues, names, fullnames, elements, coords, res_of = _BACKENDS[backend](path, text, mmcif, fast_mmcif)
    except StructureError:
        raise
    except Exception as e:   # parsers raise many kinds (ValueError, KeyError, IndexError, RuntimeError...)
        raise StructureError(f"{path}: malformed {'mmCIF' if mmcif else 'PDB'} file "
                             f"({type(e).__name__}: {e})") from None

    rnames = [r[4].strip().upper() for r in residues]
    res_of = res_of_all = np.asarray(res_of, dtype=np.int64)
    all_names = names
    resnum = _residue_numbers(path, residues)
    if _has_element_column(text, mmcif):
        # per distinct symbol, not per atom
        symbols, inv = np.unique(np.asarray(elements, dtype=str), return_inverse=True)
        el = np.asarray([e.strip().upper() for e in symbols.tolist()] or [""], dtype="<U3")[inv.ravel()]
    else:
        el = np.full(len(elements), "", dtype="<U3")
    for i in np.flatnonzero(~np.isin(el, list(ELEMENTS))).tolist():
        el[i] = element_from_name(str(fullnames[i]), rnames[res_of[i]], aligned=not mmcif)
    res_ok = np.asarray([rn not in WATER_NAMES and (keep_hetero or not r[1]) for rn, r in zip(rnames, residues)],
                        dtype=bool)
    keep = res_ok[res_of] & (el != "H") & (el != "D")
    if not keep.any():
        raise StructureError(f"{path}: empty structure (no heavy atoms after removing waters/hydrogens)")
    used = np.zeros(len(residues), dtype=bool)
    used[res_of[keep]] = True                    # residues left with atoms (not e.g. hydrogens only)
    res_of = (np.cumsum(used) - 1)[res_of[keep]]
    el, names = tight_strings(el[keep]), tight_strings(np.asarray(names, dtype=str)[keep])
    is_ca = (names == "CA") & (el == "C")
    ca_index = np.full(int(used.sum()), -1, dtype=np.int64)
    np.maximum.at(ca_index, res_of[is_ca], np.flatnonzero(is_ca))
    if not (ca_index >= 0).any():
        raise StructureError(f"{path}: no Cα atom (not a protein?)")
    kept = [residues[i] for i in np.flatnonzero(used)]
    xyz = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    with np.errstate(over="ignore"):
        xyz = xyz.astype(np.float32)               # float32 overflows to inf beyond 3.4e38
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.all():
        a = int(np.flatnonzero(~finite)[0])
        r = residues[res_of_all[a]]
        raise StructureError(f"{path}: {int((~finite).sum())} atom(s) with non-finite or unreadable coordinates, "
                             f"the first {all_names[a]!r} of {r[4]} {r[2]} in chain {r[0]!r}: "
                             f"{np.asarray(coords[a], dtype=np.float64).tolist()}")
    return Structure(
        name=structure_id(path),
        coords=xyz[keep],
        element=el,
        atom_name=names,
        residue_index=res_of.astype(np.int32),
        chain=np.asarray([r[0] for r in kept], dtype=str),
        resnum=resnum[used],
        icode=np.asarray([r[3] for r in kept], dtype=str),
        resname=np.asarray([rnames[i] for i in np.flatnonzero(used)], dtype=str),
        is_hetero=np.asarray([r[1] for r in kept], dtype=bool),
        ca_index=ca_index,
    )
