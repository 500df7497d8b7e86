"""Experiments: the thesis's tables as data and the runner that fills a table row."""
from .runner import RowResult, run_notebook_row, run_table_row, show
from .tables import TABLES, TableSpec, get_table

__all__ = ["TABLES", "TableSpec", "get_table", "RowResult", "run_table_row", "run_notebook_row", "show"]
