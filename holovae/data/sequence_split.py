"""Protein-sequence-identity splits for the ligand-binding-affinity experiment.

ATOM3D's LBA split puts complexes whose proteins share more than 30% sequence identity into the
same set (the paper's appendix on ligand binding affinity; docs/fidelity.md#lba). Its split
lists are not available offline, so this module rebuilds such a split from the structures:

1. :func:`protein_sequence`: the chains of a structure as one-letter sequences;
2. :func:`cluster_by_identity`: complexes linked by >= 30% identity (mmseqs2 when installed,
   exact pairwise alignments otherwise) grouped into clusters;
3. :func:`identity_split`: whole clusters to train / validation / test;
4. :func:`check_split_identity`: the highest identity between two sets, to report with results.

**Identity** (:func:`sequence_identity`): identical aligned positions of a global alignment
(BLOSUM62, gap open -10, extend -0.5, end gaps free: EMBOSS needle's scoring) divided by the
length of the *shorter* sequence. Dividing by the shorter length makes a domain and the longer
construct that contains it identical (1.0), which is the conservative choice for a split: such
pairs must not straddle train and test.

**Significance**: that identity alone does not separate homologs from chance. With free end
gaps the shorter sequence is placed wherever it matches best, and on the 70 LBA complexes at
hand unrelated chains of 36-100 residues reach 0.30-0.42 against longer ones (mostly through
noise-level alignments), so single linkage at 0.3 put 63 of 70 complexes into one cluster. A
pair is therefore *linked* only when its identity reaches the threshold **and** its alignment is
significant: :func:`alignment_z_score` >= ``min_z`` (8), the alignment score's distance from
the scores of the shorter sequence shuffled, in standard deviations (Lipman & Pearson's PRSS
test; under the extreme-value law of alignment scores z = 8 is p ~ 2e-5). On the LBA set the
pairs above 0.28 identity fall into two groups: z >= 20 (kinases, trypsin-like proteases,
proteasome subunits, HIV protease variants) and z <= 5.5 (short chains against long ones).
This is the role BLAST's E-value played in ATOM3D's split (identities were counted on BLAST
hits only) and the E-value plays in mmseqs2 (``-e``, default 1e-3).

mmseqs2 measures identity over the aligned columns and requires coverage of both sequences
(``-c 0.8``), so the two routes can differ for pairs near 30% and for a domain inside a longer
construct; :func:`check_split_identity` measures any split with the definition above.

**Multi-chain proteins**: two complexes are linked when *any* pair of their chains reaches the
threshold (the maximum over chain pairs), not by aligning concatenated chains. Concatenation
depends on chain order and dilutes a shared chain by the unshared ones (thrombin's 250-residue
heavy chain next to a 30-residue light chain, a kinase with or without a partner protein), so a
test complex could share its binding chain with a train complex yet fall below 30%. The
chain-pair maximum is also how ATOM3D linked PDB entries (through per-chain sequence clusters).
Chains shorter than ``min_chain_length`` (30) residues are left out when a complex has a longer
one: they are peptides (often ligands or co-factors themselves), and identity over a dozen
positions is noise (a 13-mer matches ~40% of some stretch of an unrelated protein by chance).
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = [
    "MIN_IDENTITY", "MIN_Z", "MIN_CHAIN_LENGTH", "protein_sequence", "read_chains_fasta", "complex_protein_sequences",
    "sequence_identity", "alignment_z_score", "linked", "chain_set_identity", "IdentityClusters",
    "cluster_by_identity",
    "IdentitySplit", "identity_split", "CrossSetIdentity", "check_split_identity",
]

logger = logging.getLogger(__name__)

MIN_IDENTITY = 0.3
MIN_Z = 8.0
N_SHUFFLES = 30
MIN_CHAIN_LENGTH = 30

Chains = tuple[str, ...]   # the chain sequences of one protein


# ------------------------------------------------------------------------------- sequences


def protein_sequence(structure) -> dict[str, str]:
    """Chain id -> one-letter amino-acid sequence of a structure, chains in file order.

    ``structure``: a :class:`holovae.data.structures.Structure` or a path that
    :func:`holovae.data.structures.parse_structure` reads. A residue is an amino acid when it has
    a Cα and either is a standard residue or a modified one that Biopython's extended table maps
    (MSE -> M, TPO -> T, CMT -> C, ...); other polymer residues with a Cα read as ``X``. Ligands,
    ions and nucleotides are left out, and so are chains without amino acids. Residues missing
    from the model (unresolved loops) are missing from the sequence too: SEQRES records are not
    read, the sequence is that of the modelled coordinates, as ATOM3D's (``get_chain_sequences``
    took the Cα atoms of each chain).
    """
    from Bio.Data.PDBData import protein_letters_3to1_extended

    from .structures import STANDARD_AA, Structure, parse_structure

    s = structure if isinstance(structure, Structure) else parse_structure(structure)
    chains: dict[str, list[str]] = {}
    for chain, resname, hetero, ca in zip(s.chain, s.resname, s.is_hetero, s.ca_index):
        if ca < 0:
            continue
        resname = str(resname).upper()
        letter = protein_letters_3to1_extended.get(resname)
        if resname in STANDARD_AA or letter is not None:
            chains.setdefault(str(chain), []).append(letter)
        elif not hetero:
            chains.setdefault(str(chain), []).append("X")
    return {c: "".join(letters) for c, letters in chains.items()}


def read_chains_fasta(path) -> dict[str, str]:
    """Chain id -> one-letter sequence from a FASTA file (plain or gzipped) whose record names
    are chain ids (``>A``), as :func:`protein_sequence` returns them: the chains of a full
    protein stored next to a complex whose protein file is cut to its pocket (a pocket's
    fragments are not comparable with full chains). ``ValueError`` naming the file for a
    record without a name or sequence, a repeated chain, or letters that are no amino acid."""
    from .structures import read_text

    path = Path(path)
    chains: dict[str, list[str]] = {}
    name = None
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(">"):
            name = line[1:].split()[0] if line[1:].strip() else ""
            if not name or name in chains:
                what = f"repeated chain {name!r}" if name else "record without a chain id"
                raise ValueError(f"{path}:{lineno}: {what}")
            chains[name] = []
        elif name is None:
            raise ValueError(f"{path}:{lineno}: sequence before the first '>' record")
        elif not line.isalpha():
            raise ValueError(f"{path}:{lineno}: not a one-letter amino-acid sequence: {line[:40]!r}")
        else:
            chains[name].append(line.upper())
    out = {c: "".join(s) for c, s in chains.items()}
    empty = [c for c, s in out.items() if not s]
    if not out or empty:
        what = "empty sequence for chain(s) " + ", ".join(empty) if out else "no FASTA records"
        raise ValueError(f"{path}: {what}")
    return out


def complex_protein_sequences(root) -> tuple[dict[str, Chains], list[str]]:
    """Chain sequences of every PDBbind-style complex under ``root``
    (``root/<subset>/<id>/<id>_protein.pdb[.gz]``).

    Returns ``({id: chain sequences}, [ids without a full protein file])``. Complexes with a
    pocket file only are listed apart, not read from the pocket: a pocket is a few short
    segments whose identity to a full chain is not comparable with full-length identities.
    """
    root = Path(root)
    sequences: dict[str, Chains] = {}
    missing: list[str] = []
    for directory in sorted(p for p in root.glob("*/*") if p.is_dir()):
        cid = directory.name
        if cid in sequences or cid in missing:
            raise ValueError(f"complex id {cid} occurs twice under {root}")
        files = sorted(directory.glob(f"{cid}_protein.pdb*"))
        if not files:
            missing.append(cid)
            continue
        sequences[cid] = tuple(protein_sequence(files[0]).values())
    return sequences, missing


# -------------------------------------------------------------------------------- identity


@functools.lru_cache(maxsize=1)
def _aligner():
    """Global aligner with EMBOSS needle's scoring: BLOSUM62, a gap of n residues scores
    -10 - 0.5 (n - 1), end gaps free (a domain aligns inside a longer construct unpenalised)."""
    from Bio.Align import PairwiseAligner, substitution_matrices

    aligner = PairwiseAligner(mode="global", substitution_matrix=substitution_matrices.load("BLOSUM62"),
                              open_gap_score=-10.0, extend_gap_score=-0.5)
    aligner.end_insertion_score = 0.0
    aligner.end_deletion_score = 0.0
    return aligner


@functools.lru_cache(maxsize=1)
def _alphabet() -> frozenset[str]:
    return frozenset(_aligner().substitution_matrix.alphabet)


def _clean(sequence: str) -> str:
    """Upper case, letters outside BLOSUM62 (U selenocysteine, O pyrrolysine, ...) as ``X``."""
    alphabet = _alphabet()
    return "".join(c if c in alphabet else "X" for c in sequence.upper())


def _identity_and_score(a: str, b: str) -> tuple[float, float]:
    """``(identity, alignment score)`` of two cleaned, non-empty sequences."""
    alignment = _aligner().align(a, b)[0]   # the first of the co-optimal alignments: deterministic
    return alignment.counts().identities / min(len(a), len(b)), float(alignment.score)


def sequence_identity(a: str, b: str) -> float:
    """Identical aligned positions of the global alignment of ``a`` and ``b`` divided by the
    length of the shorter sequence (see the module docstring), in [0, 1]."""
    if not a or not b:
        raise ValueError("sequence identity of an empty sequence is undefined")
    a, b = _clean(a), _clean(b)
    return 1.0 if a == b else _identity_and_score(a, b)[0]


def _z_score(score: float, a: str, b: str, n_shuffles: int) -> float:
    """z-score of ``score`` (the alignment score of cleaned ``a``, ``b``) against the scores of
    the shorter sequence shuffled ``n_shuffles`` times (composition and length kept). The
    shuffles are seeded by the two sequences, so a pair always gets the same z."""
    short, long_ = (a, b) if (len(a), a) <= (len(b), b) else (b, a)
    rng = np.random.default_rng([zlib.crc32(short.encode()), zlib.crc32(long_.encode())])
    letters = np.array(list(short))
    aligner = _aligner()
    shuffled = np.array([aligner.score("".join(rng.permutation(letters)), long_) for _ in range(n_shuffles)])
    mean, std = shuffled.mean(), shuffled.std()
    if std == 0:   # e.g. a homopolymer: every shuffle is the sequence itself
        return math.inf if score > mean else 0.0
    return float((score - mean) / std)


def alignment_z_score(a: str, b: str, n_shuffles: int = N_SHUFFLES) -> float:
    """Significance of the alignment of ``a`` and ``b`` (the aligner of
    :func:`sequence_identity`): its score minus the mean score of ``n_shuffles`` shuffles of the
    shorter sequence against the longer, in standard deviations of those scores. Homologs score
    z >> 10, unrelated pairs a few units. Costs ``n_shuffles`` score-only alignments (no
    traceback, ~10x cheaper than one alignment with identities)."""
    if not a or not b:
        raise ValueError("alignment of an empty sequence is undefined")
    a, b = _clean(a), _clean(b)
    return _z_score(_identity_and_score(a, b)[1], a, b, n_shuffles)


def linked(a: str, b: str, min_identity: float = MIN_IDENTITY, min_z: float = MIN_Z,
           n_shuffles: int = N_SHUFFLES) -> bool:
    """Whether two chains are linked for clustering: :func:`sequence_identity` >= ``min_identity``
    and :func:`alignment_z_score` >= ``min_z`` (computed only when the identity passes)."""
    return _link(_clean(a), _clean(b), min_identity, min_z, n_shuffles)[0]


def _link(a: str, b: str, min_identity: float, min_z: float, n_shuffles: int) -> tuple[bool, float, float]:
    """``(linked, identity, z)`` of two cleaned chains; z is ``nan`` when not needed (identity
    below threshold) and ``inf`` for identical chains."""
    if a == b:
        return True, 1.0, math.inf
    identity, score = _identity_and_score(a, b)
    if identity < min_identity:
        return False, identity, math.nan
    z = _z_score(score, a, b, n_shuffles)
    return z >= min_z, identity, z


def _chains(value: str | Sequence[str], min_chain_length: int) -> Chains:
    """One protein's chains (a string is one chain), cleaned, without repeats (homo-oligomers),
    and without chains shorter than ``min_chain_length`` unless no chain is longer (then the
    longest is kept)."""
    chains = [value] if isinstance(value, str) else list(value)
    chains = list(dict.fromkeys(_clean(c) for c in chains if c))
    if not chains:
        raise ValueError("a protein without any sequence")
    long = [c for c in chains if len(c) >= min_chain_length]
    return tuple(long) if long else (max(chains, key=len),)


def chain_set_identity(a: str | Sequence[str], b: str | Sequence[str], *,
                       min_chain_length: int = MIN_CHAIN_LENGTH) -> float:
    """Identity of two proteins given as chain sequences: the maximum of
    :func:`sequence_identity` over chain pairs (chains filtered as in :func:`cluster_by_identity`)."""
    return max(sequence_identity(x, y) for x in _chains(a, min_chain_length) for y in _chains(b, min_chain_length))


# ------------------------------------------------------------------------------ clustering


class _UnionFind:
    """Disjoint sets over 0..n-1 (path halving, union by index: the smaller root wins, which
    keeps components' labels deterministic)."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def components(self) -> list[list[int]]:
        groups: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            groups.setdefault(self.find(i), []).append(i)
        return list(groups.values())


@dataclass
class IdentityClusters:
    """Clusters of protein ids, each sorted (by ``str``), ordered by their first id.

    ``method``: ``"mmseqs"`` or ``"align"``; ``command`` / ``version``: the mmseqs2 command line
    (run inside a temporary folder, paths relative to it) and ``mmseqs version``, or a
    description of the alignment route; ``seconds``: wall time of the clustering.
    Iterating yields the clusters, so an instance can go where a list of clusters is expected.
    """

    clusters: list[list[Hashable]]
    method: str
    min_identity: float
    command: str
    version: str
    seconds: float = math.nan
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.clusters)

    def __len__(self) -> int:
        return len(self.clusters)

    def cluster_of(self) -> dict[Hashable, int]:
        """id -> index of its cluster."""
        return {i: k for k, members in enumerate(self.clusters) for i in members}


def _sorted_clusters(ids: list[Hashable], components: Iterable[Iterable[int]]) -> list[list[Hashable]]:
    clusters = [sorted((ids[i] for i in members), key=str) for members in components]
    return sorted(clusters, key=lambda c: str(c[0]))


def cluster_by_identity(sequences: Mapping[Hashable, str | Sequence[str]], min_identity: float = MIN_IDENTITY,
                        method: str = "auto", *, coverage: float = 0.8, min_z: float = MIN_Z,
                        n_shuffles: int = N_SHUFFLES, min_chain_length: int = MIN_CHAIN_LENGTH,
                        threads: int = 1) -> IdentityClusters:
    """Group proteins so that any two linked by sequence identity share a cluster.

    ``sequences``: id -> a protein's sequence, or its chain sequences (see the module docstring
    for multi-chain proteins and short chains). Clusters are the connected components of the
    "linked" relation (single linkage): a chain of pairwise links joins a cluster even when its
    ends are unrelated, which is what a leak-free split needs.

    ``method``:

    * ``"mmseqs"``: ``mmseqs easy-cluster --min-seq-id <min_identity> -c <coverage>`` on every
      distinct chain; proteins sharing a chain cluster are linked. The route for thousands of
      complexes (``coverage`` is used by this route only). Its run time has a fixed part of
      ~15 s on two shared cores, whatever the input: each of the three cascaded prefilter steps
      spends ~5-7 s setting up its k-mer tables.
    * ``"align"``: exact global alignments of chain pairs, linked by :func:`linked` (identity
      >= ``min_identity`` and z >= ``min_z`` over ``n_shuffles`` shuffles). Quadratic in the
      number of distinct chains, although pairs already in one cluster are skipped: fine for the
      ~100s of complexes at hand, not for PDBbind's thousands.
    * ``"auto"``: ``"mmseqs"`` when ``mmseqs`` is on PATH, else ``"align"``.
    """
    if method == "auto":
        method = "mmseqs" if shutil.which("mmseqs") else "align"
    if method not in ("mmseqs", "align"):
        raise ValueError(f"method must be 'auto', 'mmseqs' or 'align', got {method!r}")
    ids = list(sequences)
    chains = [_chains(sequences[i], min_chain_length) for i in ids]
    start = time.perf_counter()
    if method == "align":
        components, command, version, extra = _cluster_align(chains, min_identity, min_z, n_shuffles)
    else:
        components, command, version, extra = _cluster_mmseqs(chains, min_identity, coverage, threads)
    seconds = time.perf_counter() - start
    logger.info("clustered %d proteins into %d clusters with %s (%s) in %.1f s",
                len(ids), len(components), command, version, seconds)
    return IdentityClusters(_sorted_clusters(ids, components), method, min_identity, command, version, seconds, extra)


def _owners(chains: list[Chains]) -> dict[str, list[int]]:
    """Distinct chain sequence -> indices of the proteins that contain it."""
    owners: dict[str, list[int]] = {}
    for i, protein in enumerate(chains):
        for c in protein:
            owners.setdefault(c, []).append(i)
    return owners


def _cluster_align(chains: list[Chains], min_identity: float, min_z: float, n_shuffles: int):
    """Single linkage over :func:`_link` of distinct chains; returns ``(components, command,
    version, extra)`` with the numbers of alignments and z-scores computed in ``extra``."""
    import Bio

    owners = _owners(chains)
    links = _UnionFind(len(chains))
    for proteins in owners.values():   # proteins sharing an identical chain: identity 1
        for i in proteins[1:]:
            links.union(proteins[0], i)
    distinct = list(owners)
    n_aligned = n_z = 0
    for a in range(len(distinct)):
        for b in range(a + 1, len(distinct)):
            i, j = owners[distinct[a]][0], owners[distinct[b]][0]
            if links.find(i) == links.find(j):   # linked already: this pair cannot change that
                continue
            is_link, _, z = _link(distinct[a], distinct[b], min_identity, min_z, n_shuffles)
            n_aligned += 1
            n_z += not math.isnan(z)
            if is_link:
                links.union(i, j)
    command = (f"Bio.Align.PairwiseAligner global BLOSUM62 open -10 extend -0.5 end gaps 0; identity = "
               f"identical / shorter length >= {min_identity:g} and shuffle z >= {min_z:g} "
               f"({n_shuffles} shuffles); single linkage")
    return links.components(), command, f"biopython {Bio.__version__}", {"alignments": n_aligned, "z_scores": n_z}


@functools.lru_cache(maxsize=1)
def _mmseqs_version() -> str:
    out = subprocess.run(["mmseqs", "version"], capture_output=True, text=True, check=True)
    return f"mmseqs2 {out.stdout.strip()}"


def _cluster_mmseqs(chains: list[Chains], min_identity: float, coverage: float, threads: int):
    """``mmseqs easy-cluster`` over the distinct chains; proteins sharing a chain cluster are
    linked. Returns ``(components, command, version, extra)``."""
    if shutil.which("mmseqs") is None:
        raise RuntimeError("mmseqs is not on PATH (apt-get install mmseqs2, or method='align')")
    owners = _owners(chains)
    distinct = list(owners)
    command = ["mmseqs", "easy-cluster", "chains.fasta", "clusters", "tmp", "--min-seq-id", f"{min_identity:g}",
               "-c", f"{coverage:g}", "--threads", str(threads), "-v", "1"]
    with tempfile.TemporaryDirectory(prefix="holovae-mmseqs-") as tmp:
        # FASTA names are indices: protein ids may hold characters mmseqs splits on
        Path(tmp, "chains.fasta").write_text("".join(f">s{k}\n{seq}\n" for k, seq in enumerate(distinct)))
        run = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
        table = Path(tmp, "clusters_cluster.tsv").read_text().split()
    links = _UnionFind(len(chains))
    for proteins in owners.values():
        for i in proteins[1:]:
            links.union(proteins[0], i)
    for representative, member in zip(table[0::2], table[1::2]):
        links.union(owners[distinct[int(representative[1:])]][0], owners[distinct[int(member[1:])]][0])
    return links.components(), " ".join(command), _mmseqs_version(), {"chains": len(distinct)}


# ----------------------------------------------------------------------------------- split


class IdentitySplit(NamedTuple):
    """Protein ids per set, each sorted by ``str``."""

    train: list
    val: list
    test: list


def identity_split(clusters: Iterable[Sequence[Hashable]], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   seed: int = 0) -> IdentitySplit:
    """Train / validation / test ids with every cluster whole in one set.

    ``clusters``: lists of ids (e.g. an :class:`IdentityClusters`); ``fractions``: the target
    share of ids per set. Clusters are put in a canonical order (sorted), shuffled with ``seed``,
    and each goes to test while test stays within its target count, else to validation within
    its target, else to train. Validation and test therefore never exceed their targets and are
    made of the smaller clusters, large families end up in train (as in ATOM3D's split). The
    same clusters and seed give the same split, whatever order the clusters came in.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    canonical = sorted((sorted(c, key=str) for c in clusters if len(c)), key=lambda c: [str(i) for i in c])
    n = sum(len(c) for c in canonical)
    seen = [i for c in canonical for i in c]
    if len(set(seen)) != n:
        raise ValueError("an id occurs in more than one cluster")
    target_val, target_test = round(fractions[1] * n), round(fractions[2] * n)
    train, val, test = [], [], []
    for k in np.random.default_rng(seed).permutation(len(canonical)):
        cluster = canonical[k]
        if len(test) + len(cluster) <= target_test:
            test.extend(cluster)
        elif len(val) + len(cluster) <= target_val:
            val.extend(cluster)
        else:
            train.extend(cluster)
    for name, members, target in (("validation", val, target_val), ("test", test, target_test)):
        if target > 0 and not members:
            raise ValueError(f"no cluster fits the {name} set ({target} ids): the clusters are too large")
    return IdentitySplit(*(sorted(s, key=str) for s in (train, val, test)))


class CrossSetIdentity(NamedTuple):
    """Result of :func:`check_split_identity`.

    ``max_identity``: the highest identity between chains of two different sets among
    significant alignments, ``nan`` when no pair at or above ``floor`` is significant;
    ``z_score``, ``id_a``, ``id_b``, ``set_a``, ``set_b``: that pair; ``max_unfiltered``: the
    highest cross-set identity of any pair, significant or not (for completeness)."""

    max_identity: float
    z_score: float
    id_a: Hashable
    id_b: Hashable
    set_a: str
    set_b: str
    max_unfiltered: float
    floor: float

    def caption(self) -> str:
        """The sentence to put under a result table."""
        if math.isnan(self.max_identity):
            return f"no significant alignment between sets reaches {self.floor:.0%} identity"
        return (f"max. identity between sets {self.max_identity:.0%} ({self.id_a} in {self.set_a}, "
                f"{self.id_b} in {self.set_b}; z = {self.z_score:.0f})")


def check_split_identity(sequences: Mapping[Hashable, str | Sequence[str]],
                         split: IdentitySplit | Mapping[str, Sequence], *, floor: float = 0.25, min_z: float = MIN_Z, n_shuffles: int = N_SHUFFLES,
                         min_chain_length: int = MIN_CHAIN_LENGTH) -> CrossSetIdentity:
    """The highest :func:`sequence_identity` between chains of proteins in different sets of
    ``split`` (an :class:`IdentitySplit` or ``{set name: ids}``) whose alignment is significant
    (:func:`alignment_z_score` >= ``min_z``), by exact alignment whatever method made the split:
    the number to state with results (:meth:`CrossSetIdentity.caption`).

    Every distinct cross-set chain pair is aligned once; z-scores are computed from the highest
    identity down until one is significant, but not below ``floor``: unrelated proteins align
    at 0.15-0.25 (half of the LBA pairs exceed 0.2), and testing them all would cost
    ``n_shuffles`` alignments each for a number nobody reports.
    """
    sets = dict(split._asdict()) if isinstance(split, IdentitySplit) else dict(split)
    chains = {i: _chains(sequences[i], min_chain_length) for ids in sets.values() for i in ids}
    # distinct chain pair -> (identity, score, the first protein pair and sets that hold it)
    pairs: dict[tuple[str, str], tuple[float, float, Hashable, Hashable, str, str]] = {}
    names = list(sets)
    for s, name_a in enumerate(names):
        for name_b in names[s + 1:]:
            for a in sets[name_a]:
                for b in sets[name_b]:
                    for x in chains[a]:
                        for y in chains[b]:
                            key = (x, y) if x <= y else (y, x)
                            if key not in pairs:
                                identity, score = (1.0, math.inf) if x == y else _identity_and_score(*key)
                                pairs[key] = (identity, score, a, b, name_a, name_b)
    ranked = sorted(pairs.items(), key=lambda kv: -kv[1][0])   # stable: ties keep set/id order
    unfiltered = ranked[0][1][0] if ranked else 0.0
    for key, (identity, score, a, b, name_a, name_b) in ranked:
        if identity < floor:
            break
        z = math.inf if math.isinf(score) else _z_score(score, key[0], key[1], n_shuffles)
        if z >= min_z:
            return CrossSetIdentity(identity, z, a, b, name_a, name_b, unfiltered, floor)
    return CrossSetIdentity(math.nan, math.nan, None, None, "", "", unfiltered, floor)
