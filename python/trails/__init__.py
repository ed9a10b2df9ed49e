"""trails: model selection for a table, inside PostgreSQL.

The package holds all logic; the SQL functions of the extension are one-line PL/Python
bodies that call :mod:`trails.sql_api`.
"""

__version__ = "0.1.0"
