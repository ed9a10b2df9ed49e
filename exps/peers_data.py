"""The datasets of the peers benchmark (``exps/peers.py``): what each one is, loading the
three tables of ``<data>/tabular`` into PostgreSQL, and reading any split into pandas as a
user of FLAML would.

* ``frappe`` / ``uci_diabetes``: the tables ``scripts/load_dataset.sh`` makes
  (``uci_diabetes_*`` = the raw UCI columns, ``readmitted`` replaced by ``label`` = readmitted
  '<30', split 80/10/10 by the product's loader).
* ``fertility`` / ``diamonds`` / ``movielens``: ``<TRAILS_DATA_DIR>/tabular/<name>.csv.gz``
  (default ``../shared/data`` beside the repository), split here **70/20/10 by a seeded
  shuffle (numpy ``default_rng(2024).permutation``, as the product's criteo loader)** into
  ``<name>_train/_valid/_test``, loaded only when ``<name>_test`` is absent. Column types are
  inferred from the CSV: integral numbers ``bigint``, other numbers ``float8``, the rest
  ``text``; an empty cell is NULL. movielens gets ``liked`` = ``rating >= 4`` (boolean) and loses
  ``rating``.

    python exps/peers_data.py [fertility diamonds movielens] [--force]
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")
SPLIT_PERCENTS = (70, 20, 10)
SPLIT_SEED = 2024
NUMERIC_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    task: str  # binary | regression

    @property
    def metric(self) -> str:  # what every system selects with and is tested on
        return "roc_auc" if self.task == "binary" else "r2"


DATASETS = {
    "frappe": DatasetSpec("frappe", "label", "binary"),
    "uci_diabetes": DatasetSpec("uci_diabetes", "label", "binary"),
    "fertility": DatasetSpec("fertility", "morekids", "binary"),
    "diamonds": DatasetSpec("diamonds", "price", "regression"),
    "movielens": DatasetSpec("movielens", "liked", "binary"),
}
TABULAR = ("fertility", "diamonds", "movielens")


def data_dir() -> Path:
    return Path(os.environ.get("TRAILS_DATA_DIR") or REPO.parent / "shared" / "data")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_exists(connection, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (quote(table),))
        return bool(cursor.fetchone()[0])


def _shuffled_split(n: int, seed: int = SPLIT_SEED):
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    n_valid = round(n * SPLIT_PERCENTS[1] / 100)
    n_test = round(n * SPLIT_PERCENTS[2] / 100)
    n_train = n - n_valid - n_test
    return [order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]]


def _read_tabular(name: str):
    """The CSV as a DataFrame, with movielens' derived label."""
    import pandas as pd

    frame = pd.read_csv(data_dir() / "tabular" / f"{name}.csv.gz", keep_default_na=False,
                        na_values=[""])
    if name == "movielens":
        frame["liked"] = frame["rating"] >= 4
        frame = frame.drop(columns=["rating"])
    return frame


def _sql_type(series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "bigint"
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        return "bigint" if len(values) and (values == values.round()).all() else "float8"
    return "text"


def load_tabular(connection, name: str, force: bool = False) -> dict[str, int]:
    """Create ``<name>_train/_valid/_test`` from the CSV unless ``<name>_test`` exists."""
    if not force and table_exists(connection, f"{name}_test"):
        return {}
    started = time.monotonic()
    frame = _read_tabular(name)
    types = {column: _sql_type(frame[column]) for column in frame.columns}
    for column, kind in types.items():
        if kind == "bigint" and frame[column].dtype.kind == "f":
            frame[column] = frame[column].astype("Int64")
    columns = ", ".join(f"{quote(c)} {t}" for c, t in types.items())
    counts = {}
    with connection.cursor() as cursor:
        for split, index in zip(SPLITS, _shuffled_split(len(frame))):
            table = quote(f"{name}_{split}")
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} ({columns})")
            buffer = io.StringIO()
            frame.iloc[index].to_csv(buffer, index=False, header=False, na_rep="")
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} FROM STDIN WITH (FORMAT csv)", buffer)
            cursor.execute(f"ANALYZE {table}")
            counts[f"{name}_{split}"] = len(index)
    if not connection.autocommit:
        connection.commit()
    print(f"loaded {name}: {counts} in {time.monotonic() - started:.1f} s", flush=True)
    return counts


def ensure_tabular(connection, names) -> None:
    for name in names:
        if name in TABULAR:
            load_tabular(connection, name)


# --- reading a split as a FLAML user would --------------------------------------------------

def column_types(connection, table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                       " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
                       " ORDER BY attnum", (quote(table),))
        return dict(cursor.fetchall())


def read_split(connection, spec: DatasetSpec, split: str, categories: dict | None = None):
    """(X, y) of ``<dataset>_<split>`` as pandas: numbers as float, everything else (text,
    enum, boolean) as ``category``, NULL as NaN; rows with a NULL label left out (as trails
    does). ``categories`` (column → categories of the train split) recodes valid/test with
    train's categories (a value train never had becomes NaN)."""
    import pandas as pd

    table = f"{spec.name}_{split}"
    types = column_types(connection, table)
    select = ", ".join(f"{quote(c)}::text" if t not in NUMERIC_TYPES else quote(c) for c, t in types.items())
    buffer = io.StringIO()
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY (SELECT {select} FROM {quote(table)} WHERE {quote(spec.label)} IS NOT NULL)"
                           " TO STDOUT WITH (FORMAT csv, HEADER true)", buffer)
    buffer.seek(0)
    dtypes = {c: ("float64" if t in NUMERIC_TYPES else "str") for c, t in types.items()}
    frame = pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values=[""])
    y = frame.pop(spec.label)
    if spec.task == "regression":
        y = y.astype("float64")
    for column, kind in types.items():
        if column == spec.label or kind in NUMERIC_TYPES:
            continue
        if categories is not None and column in categories:
            frame[column] = pd.Categorical(frame[column], categories=categories[column])
        else:
            frame[column] = frame[column].astype("category")
    return frame, y


def label_variance(connection, spec: DatasetSpec, split: str = "test") -> float:
    """Population variance of a regression label (RMSE² = (1 − R²) · this)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT var_pop({quote(spec.label)}::float8) FROM {quote(spec.name + '_' + split)}")
        return float(cursor.fetchone()[0])


def main() -> int:
    import argparse

    import psycopg2

    p = argparse.ArgumentParser(description="load the tabular tables of the peers benchmark")
    # no choices=: argparse (3.11) refuses an empty nargs="*" list against them
    p.add_argument("names", nargs="*", help="tables to load: " + ", ".join(TABULAR) + " (default: all)")
    p.add_argument("--force", action="store_true", help="reload even when present")
    args = p.parse_args()
    unknown = sorted(set(args.names) - set(TABULAR))
    if unknown:
        p.error(f"unknown table {', '.join(unknown)}; valid: {', '.join(TABULAR)}")
    os.environ.setdefault("PGDATABASE", "trails")
    connection = psycopg2.connect("")
    connection.autocommit = True
    for name in args.names or list(TABULAR):
        load_tabular(connection, name, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
