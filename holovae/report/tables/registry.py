"""The registry of tables: every table of the paper by name (:data:`TABLES`), with its dataset.

Importable without torch or numpy (``import holovae.report.tables.registry`` fills the registry
with every table): :func:`table_datasets` answers which dataset each table belongs to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..evals import dataset_key

__all__ = ["DATASETS", "Built", "TableSpec", "Table", "TABLES", "register_table", "get_spec", "table_datasets"]

# A table's dataset (the name of its section in the config) -> the ``dataset`` of the evals it
# reads (``holovae evaluate --meta dataset=...``, compared by :func:`~holovae.report.evals.dataset_key`).
DATASETS = {"mnist": "mnist", "proteins": "protein nbs", "aminoacids": "amino acids", "lba": "lba",
            "shrec17": "shrec17"}


@dataclass(frozen=True)
class Built:
    """What a builder returns: rows, paper rows with no run of ours, and footer notes."""
    rows: list[dict]
    not_run: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableSpec:
    """A table by name: its dataset (a key of :data:`DATASETS`), its builder, the paper CSV it
    compares with, the eval keys it reads."""
    name: str
    dataset: str
    title: str
    caption: str
    paper_csv: str | None   # None: the paper's numbers are not available
    needs: tuple[str, ...]
    columns: tuple[str, ...]
    build: Callable[[list[dict], list[dict]], Built]
    labels: dict = field(default_factory=dict)   # Markdown header overrides
    formats: dict = field(default_factory=dict)  # %-formats overriding writers.default_format

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"table {self.name}: dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")

    def applies(self, ev) -> bool:
        """Whether eval ``ev`` belongs to this table's dataset (others are skipped)."""
        return dataset_key(ev) == DATASETS[self.dataset]


@dataclass(frozen=True)
class Table:
    """A built table, ready for :func:`holovae.report.writers.write_table`."""
    spec: TableSpec
    rows: list[dict]
    footer: str


TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    TABLES[spec.name] = spec
    return spec


def get_spec(name: str) -> TableSpec:
    """The registered table ``name``; ValueError listing the known names otherwise."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}")
    return TABLES[name]


def table_datasets() -> dict[str, str]:
    """``{table name: dataset}`` of every registered table."""
    return {name: spec.dataset for name, spec in TABLES.items()}
