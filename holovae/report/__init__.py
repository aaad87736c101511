"""Tables that put our reproduced numbers beside the Holographic-(V)AE paper's.

``tables`` builds the rows (one builder per table of the paper, plus a registry the
``holovae table`` command looks names up in), ``writers`` writes them as CSV and
Markdown, ``paper`` reads the paper's numbers packaged under ``report/paper/`` and
``evals`` reads and checks the JSON files ``holovae evaluate`` writes.
"""
from .evals import load_eval
from .tables import (TABLES, build_table, table1_mnist, tableS1, tableS3, tableS8_mnist,
                     tableS9_mnist)
from .writers import write_table

__all__ = ["TABLES", "build_table", "load_eval", "table1_mnist", "tableS1", "tableS3",
           "tableS8_mnist", "tableS9_mnist", "write_table"]
