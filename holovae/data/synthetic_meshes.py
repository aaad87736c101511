"""A small labelled set of procedurally generated meshes in SHREC'17's layout: the offline
stand-in that lets the Shrec17 chain run without the (non-redistributable) ShapeNet meshes.

Six classes of primitives and composites, two of them with two sub-classes (so the retrieval
NDCG has graded relevance to grade), each model randomly stretched, jittered and rotated
(uniform on SO(3), like SHREC's "perturbed" set). Written as ``<split>_perturbed/<id>.obj``
and ``<split>.csv`` (``id,synsetId,subSynsetId,modelId,split``), which
:mod:`holovae.data.shrec17` reads exactly as it reads the real files. Everything it produces
is labelled synthetic (``modelId`` ``synthetic-...``, the ``README.txt``): it demonstrates the
pipeline and is not a reproduction of the paper's Shrec17 numbers.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import write_bytes_atomic

__all__ = ["SYNTHETIC_CLASSES", "synthetic_mesh", "write_synthetic_shrec17"]


def _box(rng, sub):
    import trimesh
    if sub == "cube":
        return trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return trimesh.creation.box(extents=(1.0, 0.8, rng.uniform(0.12, 0.25)))   # slab


def _cylinder(rng, sub):
    import trimesh
    height = rng.uniform(2.2, 3.0) if sub == "rod" else rng.uniform(0.25, 0.45)   # rod / disc
    return trimesh.creation.cylinder(radius=0.5, height=height, sections=32)


def _cone(rng, sub):
    import trimesh
    return trimesh.creation.cone(radius=0.6, height=rng.uniform(1.2, 1.8), sections=32)


def _torus(rng, sub):
    import trimesh
    return trimesh.creation.torus(major_radius=1.0, minor_radius=rng.uniform(0.2, 0.35),
                                  major_sections=32, minor_sections=16)


def _capsule(rng, sub):
    import trimesh
    return trimesh.creation.capsule(height=rng.uniform(1.0, 1.8), radius=0.45, count=[16, 16])


def _table(rng, sub):
    import trimesh
    top = trimesh.creation.box(extents=(1.6, 1.0, 0.08))
    top.apply_translation((0, 0, 0.75))
    if sub == "four_legs":
        legs = []
        for x in (-0.7, 0.7):
            for y in (-0.4, 0.4):
                leg = trimesh.creation.box(extents=(0.08, 0.08, 0.75))
                leg.apply_translation((x, y, 0.375))
                legs.append(leg)
    else:   # pedestal: one column on a foot
        column = trimesh.creation.cylinder(radius=0.08, height=0.75, sections=16)
        column.apply_translation((0, 0, 0.375))
        foot = trimesh.creation.cylinder(radius=0.4, height=0.05, sections=32)
        legs = [column, foot]
    return trimesh.util.concatenate([top, *legs])


# class -> (sub-classes, builder(rng, sub))
SYNTHETIC_CLASSES: dict[str, tuple[tuple[str, ...], Callable]] = {
    "box": (("cube", "slab"), _box),
    "capsule": (("capsule",), _capsule),
    "cone": (("cone",), _cone),
    "cylinder": (("rod", "disc"), _cylinder),
    "table": (("four_legs", "pedestal"), _table),
    "torus": (("torus",), _torus),
}


def synthetic_mesh(cls: str, sub: str, rng: np.random.Generator, stretch: float = 0.2, jitter: float = 0.01):
    """One perturbed model of ``cls``/``sub``: each axis stretched by a factor in
    ``[1 - stretch, 1 + stretch]``, vertices jittered by ``jitter`` x the model's size
    (Gaussian), then rotated uniformly at random."""
    from scipy.spatial.transform import Rotation

    try:
        subs, build = SYNTHETIC_CLASSES[cls]
    except KeyError:
        raise ValueError(f"unknown synthetic class {cls!r}; choose from {sorted(SYNTHETIC_CLASSES)}") from None
    if sub not in subs:
        raise ValueError(f"class {cls!r} has sub-classes {subs}, not {sub!r}")
    mesh = build(rng, sub)
    v = mesh.vertices * rng.uniform(1 - stretch, 1 + stretch, size=3)
    v = v + rng.normal(scale=jitter * np.ptp(v, axis=0).max(), size=v.shape)
    mesh.vertices = v @ Rotation.random(random_state=rng).as_matrix().T
    return mesh


def write_synthetic_shrec17(out_dir, per_class: dict[str, int], seed: int = 0, stretch: float = 0.2,
                            jitter: float = 0.01) -> dict[str, Path]:
    """Write ``per_class[split]`` models of every class and split (e.g. ``{"train": 40, "val":
    6, "test": 14}``) to ``out_dir`` in SHREC'17's layout; sub-classes alternate within a class.
    Returns ``{split: csv path}``; the CSVs are written last, so a finished CSV means its meshes
    are complete. Deterministic for a given ``seed``."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    paths: dict[str, Path] = {}
    next_id = 1
    for split, n in per_class.items():
        if n < 1:
            raise ValueError(f"per_class[{split!r}] must be at least 1, got {n}")
        mesh_dir = out_dir / f"{split}_perturbed"
        mesh_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for cls, (subs, _) in SYNTHETIC_CLASSES.items():
            for k in range(n):
                sub = subs[k % len(subs)]
                mesh_id = f"{next_id:06d}"
                next_id += 1
                mesh = synthetic_mesh(cls, sub, rng, stretch=stretch, jitter=jitter)
                write_bytes_atomic(mesh_dir / f"{mesh_id}.obj", mesh.export(file_type="obj").encode())
                rows.append((mesh_id, cls, sub, f"synthetic-{cls}-{sub}-{k}", split))
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        w.writerow(("id", "synsetId", "subSynsetId", "modelId", "split"))
        w.writerows(rows)
        paths[split] = out_dir / f"{split}.csv"
        write_bytes_atomic(paths[split], text.getvalue().encode())
    write_bytes_atomic(out_dir / "README.txt", (
        "SYNTHETIC meshes generated by holovae.data.synthetic_meshes (seed %d): primitives of %d classes,\n"
        "randomly stretched, jittered and rotated, in SHREC'17's file layout. Not ShapeNet, not SHREC'17:\n"
        "results on them demonstrate the pipeline and reproduce nothing of the paper.\n"
        % (seed, len(SYNTHETIC_CLASSES))).encode())
    return paths
