"""trails: model selection for a table, inside PostgreSQL.

The package holds all logic; the SQL functions of the extension are one-line PL/Python
bodies that call :mod:`trails.sql_api`.
"""

__version__ = "0.6.0"

# PostgreSQL runs a process per connection on few cores; OpenMP threads that spin while
# waiting (libgomp's default) then steal the cores other processes need. Measured here with
# one other busy process on 2 cores: a training step took 85 ms with spinning threads and
# 18 ms with passive ones. Set before torch is first imported (libgomp reads it then); a
# value the user set wins.
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

