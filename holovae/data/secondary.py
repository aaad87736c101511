"""Three-state secondary structure (H helix, E strand, L other) per residue.

``method="auto"`` runs the DSSP executable (``mkdssp``, Debian package ``dssp``, or ``dssp``)
when one is on PATH and falls back to :func:`geometric_secondary` otherwise (or when DSSP fails
or does not cover the structure). DSSP's eight states map to three in the usual way:
H, G, I -> H; E, B -> E; everything else -> L.

The geometric fallback (a documented approximation: 81 % three-state agreement with DSSP 4.2
on 3 x 10^4 residues of 27 test structures) uses backbone dihedrals and Cα distances:

* helix: a "turn" starts at i when Cα(i)-Cα(i+3) <= 6.3 Å and residues i+1, i+2 have
  phi in [-160, -20], psi in [-100, 30] (the α basin); two consecutive turns (i-1, i) make
  i+1..i+3 helical (DSSP's rule with Cα distances standing in for H-bonds); runs of at
  least 4 residues are kept (DSSP's shortest α-helix);
* strand: phi in [-180, -40] and psi >= 90 or <= -150 (the β basin), and a Cα of another
  β-basin residue (>= 3 positions away in sequence, or in another chain) within 5.5 Å
  (a partner strand, which separates sheets from extended loops);
* everything else: L.

Residues that are not standard amino acids get ``"-"``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .structures import STANDARD_AA, Structure

__all__ = ["secondary_structure", "geometric_secondary", "dssp_secondary", "find_dssp", "DSSP_TO_3"]

DSSP_TO_3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def find_dssp() -> str | None:
    """Path of a DSSP executable on PATH (``mkdssp`` first), or None."""
    return shutil.which("mkdssp") or shutil.which("dssp")


def _backbone(s: Structure) -> dict:
    """``{name: [R, 3]}`` float64 backbone coordinates per residue (NaN where missing)."""
    out = {}
    for name in ("N", "CA", "C"):
        xyz = np.full((s.n_residues, 3), np.nan)
        sel = np.flatnonzero(s.atom_name == name)
        xyz[s.residue_index[sel]] = s.coords[sel]
        out[name] = xyz
    return out


def _dihedral(a, b, c, d) -> np.ndarray:
    """Dihedral angles in degrees of ``[R, 3]`` point quadruples (NaN propagates)."""
    b0, b1, b2 = a - b, c - b, d - c
    b1n = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=1, keepdims=True) * b1n
    x = np.sum(v * w, axis=1)
    y = np.sum(np.cross(b1n, v) * w, axis=1)
    return np.degrees(np.arctan2(y, x))


def _runs_at_least(flag: np.ndarray, linked: np.ndarray, n: int) -> np.ndarray:
    """Keep only runs of ``flag`` of length >= n; a run continues from i-1 to i only where
    ``linked[i]`` (same chain, peptide bond)."""
    out = np.zeros_like(flag)
    i, R = 0, len(flag)
    while i < R:
        if not flag[i]:
            i += 1
            continue
        j = i + 1
        while j < R and flag[j] and linked[j]:
            j += 1
        if j - i >= n:
            out[i:j] = True
        i = j
    return out


def geometric_secondary(s: Structure) -> np.ndarray:
    """H/E/L per residue ``[R]`` from backbone geometry (see the module docstring); ``"-"`` for
    residues that are not standard amino acids."""
    from scipy.spatial import cKDTree

    bb = _backbone(s)
    R = s.n_residues
    aa = np.isin(s.resname, list(STANDARD_AA))
    # peptide bond i-1 -> i: same chain and C(i-1)-N(i) < 2 Å
    linked = np.zeros(R, dtype=bool)
    if R > 1:
        d = np.linalg.norm(bb["C"][:-1] - bb["N"][1:], axis=1)
        linked[1:] = (s.chain[1:] == s.chain[:-1]) & (d < 2.0) & aa[1:] & aa[:-1]
    prev_c = np.roll(bb["C"], 1, axis=0)
    next_n = np.roll(bb["N"], -1, axis=0)
    phi = np.where(linked, _dihedral(prev_c, bb["N"], bb["CA"], bb["C"]), np.nan)
    next_linked = np.append(linked[1:], False)
    psi = np.where(next_linked, _dihedral(bb["N"], bb["CA"], bb["C"], next_n), np.nan)
    with np.errstate(invalid="ignore"):
        ca3 = np.full(R, np.inf)
        if R > 3:
            chained3 = linked[1:-2] & linked[2:-1] & linked[3:]
            d3 = np.linalg.norm(bb["CA"][3:] - bb["CA"][:-3], axis=1)
            ca3[:-3] = np.where(chained3, d3, np.inf)
        alpha = (phi >= -160) & (phi <= -20) & (psi >= -100) & (psi <= 30)
        # a helical turn starts at i when Cα(i)-Cα(i+3) is short and the inner residues i+1,
        # i+2 sit in the α basin; like DSSP, two consecutive turns make i+1..i+3 helical
        turn = (ca3 <= 6.3) & np.append(alpha[1:], False) & np.append(alpha[2:], [False, False])
        start = turn & np.insert(turn[:-1], 0, False) & linked
        helix = np.zeros(R, dtype=bool)
        for k in (1, 2, 3):
            helix[k:] |= start[:-k] if R > k else False
        helix = _runs_at_least(helix, linked, 4)
        beta = (phi <= -40) & ((psi >= 90) | (psi <= -150)) & ~helix
    strand = np.zeros(R, dtype=bool)
    cand = np.flatnonzero(beta & np.isfinite(bb["CA"]).all(1))
    if cand.size > 1:
        tree = cKDTree(bb["CA"][cand])
        for i, j in tree.query_pairs(5.5, output_type="ndarray"):
            a, b = cand[i], cand[j]
            if s.chain[a] != s.chain[b] or abs(int(a) - int(b)) >= 3:
                strand[a] = strand[b] = True
    ss = np.full(R, "L", dtype="<U1")
    ss[helix] = "H"
    ss[strand] = "E"
    ss[~aa] = "-"
    return ss


def _parse_classic_dssp(text: str) -> dict:
    """``{(chain, resnum, icode): state}`` from DSSP's classic output."""
    out, body = {}, False
    for line in text.splitlines():
        if line.startswith("  #  RESIDUE"):
            body = True
            continue
        if not body or len(line) < 17 or line[13] == "!":     # "!" marks a chain break
            continue
        try:
            resnum = int(line[5:10])
        except ValueError:
            continue
        out[(line[11].strip(), resnum, line[10].strip())] = line[16]
    return out


def dssp_secondary(s: Structure, path, executable: str | None = None, timeout: float = 120.0) -> np.ndarray:
    """H/E/L per residue from DSSP run on the original file ``path`` (plain or gz).

    Raises ``RuntimeError`` if DSSP is missing or fails, or if it assigns fewer than 90 % of the
    amino acids (e.g. multi-letter chain ids, which the classic format truncates).
    """
    exe = executable or find_dssp()
    if exe is None:
        raise RuntimeError("no DSSP executable (mkdssp) on PATH")
    with tempfile.TemporaryDirectory(prefix="holovae_dssp_") as tmp:
        src = Path(path)
        # mkdssp decides the input format by the name: give PDB files a .pdb name
        if not src.name.lower().removesuffix(".gz").endswith((".cif", ".mmcif", ".pdb", ".ent")):
            link = Path(tmp) / ("input.pdb" + (".gz" if src.name.endswith(".gz") else ""))
            os.symlink(src.resolve(), link)
            src = link
        out = Path(tmp) / "out.dssp"
        proc = subprocess.run([exe, "--output-format", "dssp", str(src), str(out)],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{exe} failed on {path} (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        table = _parse_classic_dssp(out.read_text())
    aa = np.isin(s.resname, list(STANDARD_AA))
    ss = np.full(s.n_residues, "-", dtype="<U1")
    found = 0
    for r in np.flatnonzero(aa).tolist():
        state = table.get((s.chain[r], int(s.resnum[r]), s.icode[r]))
        if state is not None:
            found += 1
        ss[r] = DSSP_TO_3.get(state, "L")
    if aa.any() and found < 0.9 * aa.sum():
        raise RuntimeError(f"DSSP assigned only {found} of {int(aa.sum())} amino acids of {path}")
    return ss


def secondary_structure(s: Structure, path=None, method: str = "auto") -> tuple[np.ndarray, str]:
    """``(ss [R] of "H"/"E"/"L" ("-" for non-amino acids), method used)``.

    ``method``: ``"auto"`` (DSSP if available and it works on this file, else geometry),
    ``"dssp"`` (errors propagate), ``"geometry"``. The method string returned is ``"dssp"`` or
    ``"geometry"``.
    """
    if method not in ("auto", "dssp", "geometry"):
        raise ValueError(f"method must be 'auto', 'dssp' or 'geometry', got {method!r}")
    if method == "dssp" or (method == "auto" and path is not None and find_dssp()):
        try:
            return dssp_secondary(s, path), "dssp"
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            if method == "dssp":
                raise
    return geometric_secondary(s), "geometry"
