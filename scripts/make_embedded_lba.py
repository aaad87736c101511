#!/usr/bin/env python
"""Regenerate ``holovae/data/embedded/lba`` (the offline LBA demonstration) from the project's
real complexes, deterministically.

    PYTHONPATH=. python scripts/make_embedded_lba.py --source ../shared/data/lba [--out holovae/data/embedded/lba]

Every complex of ``complexes/manifest.csv`` with a full protein file and a ligand that holovae
reads is kept. Per complex the folder gets:

* ``<id>_pocket.pdb.gz``: the protein file's own ATOM/HETATM lines (unchanged, in file order) of
  every heavy atom within ``KEEP_RADIUS`` (10.5 Å) of the Cα of a pocket residue under *either*
  protocol (Cα within 10 Å of the ligand, or any heavy atom within 6 Å), and all atoms of those
  residues; no hydrogens, no waters (holovae drops both), of alternate locations only the one
  holovae's parser chooses. A neighbourhood of radius <= 10 Å around a
  pocket Cα is therefore the same as in the full protein: the script checks this, atom for atom,
  for both protocols, and stops if any complex differs;
* ``<id>_chains.fasta``: the chains of the *full* protein (``holovae lba-split`` clusters on
  them; a pocket's fragments are not comparable);
* ``<id>_ligand.sdf.gz`` or ``.mol2.gz``: the first ligand file holovae reads, unchanged.

``affinities.csv``: pK from the PDBbind 2019 refined index where the complex is in it, else the
label the shared manifest carries (GIGN's PDBbind tables), with source columns. Files are gzipped
without name or timestamp, so a rerun is byte-identical; ``SHA256SUMS`` lists them.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np

from holovae.data.lba import complex_neighbourhoods, find_complexes, pocket_residues, read_ligand, read_pdbbind_index
from holovae.data.neighbourhoods import DEFAULT_ELEMENTS
from holovae.data.sequence_split import protein_sequence
from holovae.data.structures import WATER_NAMES

KEEP_RADIUS = 10.5          # Å around every pocket Cα: complete for neighbourhoods of r_max <= 10 Å
RULES = (("ca", 10.0), ("any_atom", 6.0))   # the paper's pocket and ATOM3D's (the authors')
OUT = Path(__file__).resolve().parents[1] / "holovae" / "data" / "embedded" / "lba"


def gz(data: bytes) -> bytes:
    """gzip without file name or timestamp (byte-identical on rerun)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def text_of(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode()


def is_hydrogen(line: str) -> bool:
    """A PDB atom line of a hydrogen by its element column (PDBbind's files have one; a line
    without it is kept, and holovae's parser decides)."""
    return line[76:78].strip().upper() in ("H", "D")


def kept_atoms(s, ligand) -> set:
    """Rounded coordinates of the atoms to keep: every atom within ``KEEP_RADIUS`` of the Cα of
    a pocket residue under either rule, and every atom of such a residue (a centre needs its
    backbone)."""
    from scipy.spatial import cKDTree

    centres = np.unique(np.concatenate([pocket_residues(s, ligand.coords, cutoff, rule) for rule, cutoff in RULES]))
    tree = cKDTree(s.coords[s.ca_index[centres]].astype(np.float64))
    near = np.array([len(x) > 0 for x in tree.query_ball_point(s.coords.astype(np.float64), r=KEEP_RADIUS)])
    near |= np.isin(s.residue_index, centres)
    return {atom_key(x) for x in s.coords[near]}


def atom_key(xyz) -> tuple:
    """An atom's identity by position (PDB coordinates have 3 decimals)."""
    return tuple(int(round(float(v) * 1000)) for v in xyz)


def pocket_text(protein: Path, keep: set) -> str:
    """The protein file's atom lines of the ``keep`` atoms (matched by position, so of an atom
    with alternate locations only the one holovae's parser chose), hydrogens and waters left out."""
    lines = []
    for line in text_of(protein).splitlines():
        if line.startswith("ENDMDL"):
            break                                   # holovae reads the first model only
        if not line.startswith(("ATOM  ", "HETATM")) or is_hydrogen(line):
            continue
        if line[17:20].strip().upper() in WATER_NAMES:
            continue
        if atom_key((line[30:38], line[38:46], line[46:54])) in keep:
            lines.append(line.rstrip())
    return "\n".join(lines + ["END"]) + "\n"


def same_neighbourhoods(full, cut, ligand) -> None:
    """The pocket neighbourhoods of the cut file equal the full protein's for both rules."""
    for rule, cutoff in RULES:
        a = complex_neighbourhoods(full, ligand, pocket_cutoff=cutoff, pocket_rule=rule, other_channel=True,
                                   elements=DEFAULT_ELEMENTS)
        b = complex_neighbourhoods(cut, ligand, pocket_cutoff=cutoff, pocket_rule=rule, other_channel=True,
                                   elements=DEFAULT_ELEMENTS)
        key = lambda s, c: [(s.chain[r], int(s.resnum[r]), s.icode[r]) for r in c.residue]  # noqa: E731
        if key(full, a) != key(cut, b) or not np.array_equal(a.offsets, b.offsets) \
                or not np.array_equal(a.points, b.points) or not np.array_equal(a.channels, b.channels):
            raise RuntimeError(f"{full.name}: the cut pocket changes the {rule} neighbourhoods")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data" / "lba")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from holovae.data.structures import parse_structure

    manifest = {r["pdb_id"]: r for r in csv.DictReader(open(args.source / "complexes" / "manifest.csv"))}
    refined = read_pdbbind_index(args.source / "index" / "INDEX_refined_data.2019")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.iterdir():              # everything but the README is regenerated
        if old.is_dir():
            shutil.rmtree(old)
        elif old.name != "README.md":
            old.unlink()
    rows, skipped = [], []
    for c in find_complexes(args.source / "complexes", receptor="protein"):
        if c.receptor is None:
            skipped.append((c.pdb_id, "no full protein file"))
            continue
        full, ligand = c.load()
        keep = kept_atoms(full, ligand)
        folder = args.out / c.pdb_id
        folder.mkdir()
        pocket = folder / f"{c.pdb_id}_pocket.pdb.gz"
        pocket.write_bytes(gz(pocket_text(c.protein, keep).encode()))
        same_neighbourhoods(full, parse_structure(pocket), ligand)
        chains = {k: v for k, v in protein_sequence(full).items() if v}
        (folder / f"{c.pdb_id}_chains.fasta").write_text("".join(f">{k}\n{v}\n" for k, v in chains.items()))
        lig = Path(ligand.source)
        read_ligand(lig)
        (folder / f"{lig.name.removesuffix('.gz')}.gz").write_bytes(gz(text_of(lig).encode()))
        m = manifest[c.pdb_id]
        in_refined = c.pdb_id in refined
        if in_refined and abs(refined[c.pdb_id] - float(m["neglog_aff"])) > 0.011:
            raise RuntimeError(f"{c.pdb_id}: refined index {refined[c.pdb_id]} vs manifest {m['neglog_aff']}")
        rows.append([c.pdb_id, f"{refined[c.pdb_id] if in_refined else float(m['neglog_aff']):g}",
                     "INDEX_refined_data.2019" if in_refined else m["label_source"],
                     m["source_repo"], m["source_commit"], m["source_path"]])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["pdb_id", "neglog_aff", "label_source", "source_repo", "source_commit", "source_path"])
    w.writerows(rows)
    (args.out / "affinities.csv").write_text(buf.getvalue())
    files = sorted(p for p in args.out.rglob("*") if p.is_file() and p.name not in ("SHA256SUMS", "README.md"))
    (args.out / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(args.out)}\n" for p in files))
    total = sum(p.stat().st_size for p in files)
    print(f"wrote {len(rows)} complexes to {args.out} ({total:,} bytes in {len(files)} files); "
          f"left out: {skipped}")


if __name__ == "__main__":
    main()
