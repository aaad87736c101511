"""Reproduced-vs-paper tables: one builder per table of the paper, and a registry of them.

Each table is a :class:`TableSpec` registered by name (:data:`TABLES`) with its dataset; its
builder takes our eval dicts (one per trained variant, as ``holovae evaluate`` writes them) and
the paper's rows (default: the packaged CSV) and returns rows: our value of every metric the
paper reports in ``<metric>``, the paper's in ``<metric>_paper`` (None when the paper has no
matching row). Only variants we ran get a row; paper rows we did not run are named by
:func:`build_table` in the table's footer instead of appearing as half-empty rows. The public
builders (``table1_mnist``, ``tableS1``, ...) return the rows of one table.

One module per dataset (``mnist``, ``proteins``, ``aminoacids``, ``lba``, ``shrec17``), what
they share in ``common``, the registry in ``registry`` (importable without torch or numpy) and
:func:`build_table` in ``build``. To add a table, write a ``_build_x(evals, paper) -> Built`` in
its dataset's module and :func:`register_table` a :class:`TableSpec` for it (CONTRIBUTING.md);
``holovae table`` picks it up by name. A spec's ``dataset`` picks the evals it reads: the others
are skipped before their keys are checked, so one folder of evals serves every table.
"""
# each dataset's module registers its tables on import, in the order of the paper's
from . import mnist, proteins, aminoacids, lba, shrec17  # noqa: F401  (isort: skip)
from .build import build_table, table_rows
from .common import match
from .mnist import table1_mnist, tableS1, tableS3, tableS8_mnist, tableS9_mnist
from .proteins import tableS2, tableS7, tableS9_proteins
from .registry import DATASETS, TABLES, Built, Table, TableSpec, get_spec, register_table, table_datasets
from .shrec17 import table1_shrec17, tableS4

__all__ = ["TABLES", "DATASETS", "Built", "Table", "TableSpec", "build_table", "get_spec", "match", "register_table",
           "table_datasets", "table_rows", "table1_mnist", "tableS1", "tableS3", "tableS8_mnist", "tableS9_mnist",
           "tableS2", "tableS7", "tableS9_proteins", "table1_shrec17", "tableS4"]
