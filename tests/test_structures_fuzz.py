"""Fuzzing `holovae prepare-structures` with broken copies of real PDB and mmCIF files.

Four small real structures (20-residue excerpts of two embedded PDBbind pockets and two
embedded wwPDB mmCIF entries: nothing outside the package is needed) are mutated, with a fixed
seed, into 1,008 files: truncations, byte flips, deleted / duplicated / swapped lines, junk in
numeric fields, truncated and bit-flipped gzip. All of them, with the four unmutated files
among them, go through the CLI in one run per cloud mode. Asserted:

* rc 0, no traceback logged, no "internal error";
* every mutant either gives rows or is listed in the skipped TSV with a reason naming it;
* the unmutated files keep the rows of a clean run (up to float32 rounding);
* where the outcome is certain, it is that one (``Mutant.expect``): refused for a PDB cut before
  its END, a coordinate that is no number, a non-ASCII byte in a PDB record, a corrupted gzip
  stream; the base's rows for duplicated or swapped lines (the same atoms), junk in a field
  holovae does not read (serial, B-factor) and a gzip whose CRC still holds; no residue the base
  lacks for a deleted line or a truncated mmCIF (mmCIF has no end marker: a cut at a row boundary
  is a complete-looking file).

Both modes together take ~20 s of CPU (small transforms: lmax 2, n_max 4).
"""
from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from holovae.cli import main
from holovae.data.hdf5 import read_dataset

EMBEDDED = Path(__file__).resolve().parents[1] / "holovae" / "data" / "embedded"
BASES = {   # name: (source, format)
    "pdb1": (EMBEDDED / "lba" / "1k9q" / "1k9q_pocket.pdb.gz", "pdb"),
    "pdb2": (EMBEDDED / "lba" / "2l1r" / "2l1r_pocket.pdb.gz", "pdb"),
    "cif1": (EMBEDDED / "structures" / "7loe.cif.gz", "cif"),
    "cif2": (EMBEDDED / "structures" / "7rh3.cif.gz", "cif"),
}
N_RESIDUES = 20
SEED = 20240615
# mutants per base file and kind: 4 x 252 = 1,008
PER_KIND = {"truncate": 40, "flip": 40, "delete": 30, "duplicate": 30, "swap": 30, "junk": 52,
            "gzip_truncate": 15, "gzip_flip": 15}
# not numbers: placed in a coordinate they must get the file refused
NOT_NUMBERS = ["", "nan", "inf", "-inf", "1.2x4", "?", ".", "abc", "-", "1_0.5", "0x1F"]
NUMBERS = ["99999999", "-0", "1e5", "0.000"]
PDB_FIELDS = {"serial": (6, 11), "resnum": (22, 26), "x": (30, 38), "y": (38, 46), "z": (46, 54),
              "occupancy": (54, 60), "bfactor": (60, 66)}
CIF_FIELDS = {"id": "id", "resnum": "auth_seq_id", "label_seq": "label_seq_id", "x": "Cartn_x", "y": "Cartn_y",
              "z": "Cartn_z", "occupancy": "occupancy", "bfactor": "B_iso_or_equiv"}


def _text(path: Path) -> str:
    return gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()


def _pdb_excerpt(text: str) -> str:
    """Header records, the atoms of the first ``N_RESIDUES`` residues, and END."""
    out, seen = [], []
    for line in text.splitlines(True):
        if line.startswith(("ATOM  ", "HETATM")):
            key = line[21:27]
            if key not in seen:
                seen.append(key)
            if len(seen) > N_RESIDUES:
                break
        elif line.startswith(("END", "CONECT", "MASTER", "TER")):
            continue
        out.append(line)
    return "".join(out) + "END\n"


def _cif_excerpt(text: str) -> str:
    """Everything up to the _atom_site loop's rows, the rows of the first ``N_RESIDUES`` residues,
    and the loop's terminator."""
    lines = text.splitlines(True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(("ATOM ", "HETATM ")))
    tags = [ln.split(".")[1].strip() for ln in lines[:start] if ln.startswith("_atom_site.")]
    seq = tags.index("auth_seq_id")
    out, seen = lines[:start], []
    for ln in lines[start:]:
        if not ln.startswith(("ATOM ", "HETATM ")):
            break
        key = ln.split()[seq]
        if key not in seen:
            seen.append(key)
        if len(seen) > N_RESIDUES:
            break
        out.append(ln)
    return "".join(out) + "#\n"


def _non_ascii_record(data: bytes) -> bool:
    """Whether an ATOM/HETATM record holds a non-ASCII byte (gemmi slices bytes: later fields
    would shift)."""
    return any(ln.startswith((b"ATOM  ", b"HETATM")) and not ln.isascii() for ln in data.split(b"\n"))


@dataclass
class Mutant:
    """One broken copy of base file ``base``. ``expect``: what must come of it, where that is
    certain -- ``"refuse"`` (certainly damaged), ``"same"`` (certainly the base's atoms: the base's
    rows, in any order), ``"subset"`` (atoms lost: no row the base lacks), or ``""`` (no
    certainty: a flipped byte can make another valid file)."""
    path: Path
    base: str
    kind: str
    expect: str = ""


def _junk_line(rng, line: str, fmt: str, tags: list) -> tuple[str, str]:
    """``line`` with one numeric field replaced by junk, and the expectation: refused for a
    coordinate that is no number, the base's rows for a field holovae does not use (serial,
    B-factor), no certainty otherwise (a number in a residue number or occupancy is valid)."""
    token = rng.choice(NOT_NUMBERS + NUMBERS)
    field = rng.choice(list(PDB_FIELDS if fmt == "pdb" else CIF_FIELDS))
    expect = ("refuse" if field in ("x", "y", "z") and token in NOT_NUMBERS else
              "same" if field in ("serial", "bfactor") and token else "")
    if fmt == "pdb":
        a, b = PDB_FIELDS[field]
        line = line.rstrip("\n").ljust(80)
        return line[:a] + token.rjust(b - a)[: b - a] + line[b:] + "\n", expect
    tokens = line.split()
    tokens[tags.index(CIF_FIELDS[field])] = token if token else "''"     # an empty CIF value is ''
    return " ".join(tokens) + "\n", expect if field != "bfactor" else ""  # (gemmi: B_iso not a number: error)


def _mutants(rng, name: str, text: str, fmt: str, folder: Path) -> list:
    """Every mutant of one base text, written to ``folder``."""
    ext = ".pdb" if fmt == "pdb" else ".cif"
    lines = text.splitlines(True)
    atom_lines = [i for i, ln in enumerate(lines) if ln.startswith(("ATOM", "HETATM"))]
    tags = [ln.split(".")[1].strip() for ln in lines if ln.startswith("_atom_site.")]
    data = text.encode()
    packed = gzip.compress(data, mtime=0)
    out = []

    def write(kind, payload, gz=False, expect=""):
        path = folder / f"m{len(out):03d}_{name}_{kind}{ext}{'.gz' if gz else ''}"
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
        out.append(Mutant(path, name, kind, expect))

    for kind, n in PER_KIND.items():
        for _ in range(n):
            if kind == "truncate":              # before the last 5 bytes: a PDB loses its END
                write(kind, data[: rng.integers(1, len(data) - 5)], expect="refuse" if fmt == "pdb" else "subset")
            elif kind == "flip":
                b = bytearray(data)
                for i in rng.integers(0, len(b), size=rng.integers(1, 4)):
                    b[i] ^= int(rng.integers(1, 256))
                write(kind, bytes(b), expect="refuse" if fmt == "pdb" and _non_ascii_record(bytes(b)) else "")
            elif kind in ("delete", "duplicate", "swap"):
                ls = list(lines)
                i, j = (int(k) for k in rng.choice(atom_lines, size=2, replace=False))
                if kind == "delete":            # one atom fewer
                    del ls[i]
                elif kind == "duplicate":       # an atom twice: the first is kept, the same atoms
                    ls.insert(j, ls[i])
                else:                           # the same atoms in another order
                    ls[i], ls[j] = ls[j], ls[i]
                write(kind, "".join(ls), expect="subset" if kind == "delete" else "same")
            elif kind == "junk":
                ls = list(lines)
                i = int(rng.choice(atom_lines))
                ls[i], expect = _junk_line(rng, ls[i], fmt, tags)
                write(kind, "".join(ls), expect=expect)
            elif kind == "gzip_truncate":
                write(kind, packed[: rng.integers(1, len(packed) - 1)], gz=True, expect="refuse")
            else:                               # gzip_flip: a header byte (mtime, OS) leaves the content
                b = bytearray(packed)
                i = int(rng.integers(0, len(b)))
                b[i] ^= int(rng.integers(1, 256))
                try:
                    intact = gzip.decompress(bytes(b)) == data
                except Exception:
                    intact = False
                write(kind, bytes(b), gz=True, expect="same" if intact else "refuse")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``(folder, base files {name: path}, mutants)``."""
    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    bases, mutants = {}, []
    for name, (source, fmt) in BASES.items():
        text = (_pdb_excerpt if fmt == "pdb" else _cif_excerpt)(_text(source))
        bases[name] = folder / f"base_{name}.{fmt}"
        bases[name].write_text(text)
        mutants += _mutants(rng, name, text, fmt, folder)
    assert len(mutants) >= 1000
    return folder, bases, mutants


def _rows(path) -> dict:
    """``{structure id: (ids without the structure id, coefficients)}``."""
    ds = read_dataset(path)
    out: dict = {}
    for rid, row in zip(ds.ids.tolist(), ds.coefficients.numpy()):
        name, rest = rid.split("|", 1)
        ids, rows = out.setdefault(name, ([], []))
        ids.append(rest)
        rows.append(row)
    return {k: (ids, np.asarray(rows)) for k, (ids, rows) in out.items()}


def _assert_same_rows(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding: the transform batches clouds of similar sizes together, so
    a row's sums run in another order when other files share its chunk (seen: 4e-6 of 14)."""
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def _structure_id(path: Path) -> str:
    return path.name.split(".")[0]


@pytest.mark.parametrize("clouds", ["neighbourhood", "residue"])
def test_fuzzed_structures_never_crash_and_never_pass_silently(corpus, tmp_path, caplog, clouds):
    folder, bases, mutants = corpus
    # small transforms: the parsing and the bookkeeping are under test (r_max 6 Å: a quarter of
    # the points of 10 Å neighbourhoods; residue clouds keep 10 Å, they reach 7.4 Å)
    common = ["--clouds", clouds, "--lmax", "2", "--n-max", "4", "--r-max", "6" if clouds == "neighbourhood" else "10",
              "--secondary", "geometry", "--no-progress"]
    assert main(["prepare-structures", *map(str, bases.values()), "--out", str(tmp_path / "clean.h5"), *common]) == 0
    clean = _rows(tmp_path / "clean.h5")
    assert sorted(clean) == sorted(f"base_{n}" for n in bases) and all(len(v[0]) > 10 for v in clean.values())

    # the good files interleaved with the mutants: they share chunks of the batched transform
    files = [m.path for m in mutants]
    for k, p in enumerate(bases.values()):
        files.insert(k * len(files) // len(bases), p)
    caplog.set_level(logging.WARNING, logger="holovae")
    skipped_tsv = tmp_path / "skipped.tsv"
    assert main(["prepare-structures", *map(str, files), "--out", str(tmp_path / "fuzz.h5"),
                 "--skipped", str(skipped_tsv), *common]) == 0
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    lines = [ln.split("\t") for ln in skipped_tsv.read_text().splitlines()[1:]]
    refused = {r[0]: r[3] for r in lines if r[1] == ""}
    assert not [r for r in refused.values() if "internal error" in r]
    got = _rows(tmp_path / "fuzz.h5")

    for name, (ids, rows) in clean.items():                 # the good files: the clean rows
        assert got[name][0] == ids
        _assert_same_rows(got[name][1], rows)
    for m in mutants:
        sid, key = _structure_id(m.path), str(m.path)
        assert (sid in got) != (key in refused), f"{m.path.name}: rows and refused, or neither"
        if key in refused:
            assert m.path.name in refused[key], refused[key]
            assert m.expect != "same", f"{m.path.name} ({m.kind}) refused: {refused[key]}"
            continue
        assert m.expect != "refuse", f"{m.path.name} ({m.kind}) passed"
        base_ids, base_rows = clean[f"base_{m.base}"]
        ids, rows = got[sid]
        if m.expect == "subset":
            assert set(ids) <= set(base_ids), f"{m.path.name}: {sorted(set(ids) - set(base_ids))}"
        elif m.expect == "same":
            assert sorted(ids) == sorted(base_ids), m.path.name
            order = {i: k for k, i in enumerate(base_ids)}
            _assert_same_rows(rows, base_rows[[order[i] for i in ids]])
