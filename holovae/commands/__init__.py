"""Subcommands of the ``holovae`` CLI: one module each, with ``register(subparsers)``."""
import importlib

MODULES = ["prepare_mnist", "download", "train", "embed", "evaluate", "table", "figure", "prepare_structures", "merge", "embed_structures", "subset", "download_structures",
           "prepare_lba", "lba_split", "lba_regress", "synthetic_meshes", "prepare_shrec17", "scorecard",
           "import_checkpoint"]


def register_all(sub) -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
