"""Load the benchmark datasets into PostgreSQL: ``NAME_train``, ``NAME_valid``, ``NAME_test``.

Usage (connection from PGHOST/PGPORT/PGUSER/PGDATABASE, as psql)::

    python -m trails.data.loaders frappe [DATA_DIR]
    python -m trails.data.loaders uci_diabetes [DATA_DIR]
    python -m trails.data.loaders criteo [DATA_DIR]

``DATA_DIR`` defaults to ``$TRAILS_DATA_DIR``, then ``../shared/data``. Each load runs in
one transaction, replaces earlier tables of the same names, and uses COPY.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from trails.config import data_dir
from trails.data import frappe
from trails.data.bulk_copy import copy_rows, quote_ident

SPLITS = ("train", "valid", "test")


def _drop_split_tables(cursor, name: str) -> None:
    for split in SPLITS:
        cursor.execute(f"DROP TABLE IF EXISTS {quote_ident(f'{name}_{split}')}")


FRAPPE_COLUMNS = ("user_id", "item_id", *frappe.CONTEXT_FIELDS)


def load_frappe(cursor, folder: Path, seed: int = frappe.DEFAULT_SEED) -> dict[str, int]:
    """frappe_{train,valid,test}: id, label and the 10 fields, each an enum type.

    Every field is categorical with a declared domain, so its type is an enum
    ``frappe_<field>`` listing every value of the raw log (users and items in numeric
    order, context values in order of first appearance). The layout takes an enum's
    dictionary from its type, not from the rows of the train split: one user occurs only
    in valid/test, and the ids still come out as ARM-Net's 5,382.
    """
    log = frappe.read_log(folder / "frappe" / "raw_frappe.csv.gz")
    parts = frappe.split_rows(frappe.build_rows(log, seed))
    _drop_split_tables(cursor, "frappe")
    domains = {"user": [str(user) for user in np.unique(log.users)],
               "item": [str(item) for item in np.unique(log.items)],
               **log.context_values}
    for field, values in domains.items():
        type_name = quote_ident(f"frappe_{field}")
        labels = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
        cursor.execute(f"DROP TYPE IF EXISTS {type_name}")
        cursor.execute(f"CREATE TYPE {type_name} AS ENUM ({labels})")
    field_columns = ", ".join(f"{quote_ident(column)} {quote_ident('frappe_' + field)}"
                              for column, field in zip(FRAPPE_COLUMNS, frappe.FIELDS))
    columns = ["id", "label", *FRAPPE_COLUMNS]
    counts, next_id = {}, 1
    for split in SPLITS:
        table = quote_ident(f"frappe_{split}")
        cursor.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, label smallint NOT NULL,"
                       f" {field_columns})")
        part = parts[split]
        n = len(part["label"])
        rows = zip(range(next_id, next_id + n), part["label"].tolist(), part["user"].tolist(),
                   part["item"].tolist(), *(part[field].tolist() for field in frappe.CONTEXT_FIELDS))
        counts[f"frappe_{split}"] = copy_rows(cursor, table, columns, rows)
        next_id += n
    return counts


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _shuffled_split(n: int, percents: tuple[int, int, int], seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_valid = round(n * percents[1] / 100)
    n_test = round(n * percents[2] / 100)
    n_train = n - n_valid - n_test
    return [order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]]


def load_uci_diabetes(cursor, folder: Path, seed: int = 2024) -> dict[str, int]:
    """``diabetes``: the raw UCI CSV as a user would load it (50 columns, names lower-cased
    with '-' → '_', integer columns typed integer, '?' → NULL); ``uci_diabetes_{split}``: the
    same rows without ``readmitted`` plus ``label`` = 1 iff readmitted = '<30', split 80/10/10."""
    archive = folder / "uci_diabetes" / "dataset_diabetes.zip"
    with zipfile.ZipFile(archive) as bundle:
        text = bundle.read("dataset_diabetes/diabetic_data.csv").decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = [name.lower().replace("-", "_") for name in next(reader)]
    rows = [[None if value == "?" else value for value in row] for row in reader]
    integer = [all(row[i] is None or _is_integer(row[i]) for row in rows)
               for i in range(len(header))]
    column_defs = ", ".join(f"{quote_ident(name)} {'integer' if is_int else 'text'}"
                            for name, is_int in zip(header, integer))
    cursor.execute("DROP TABLE IF EXISTS diabetes")
    _drop_split_tables(cursor, "uci_diabetes")
    cursor.execute(f"CREATE TABLE diabetes ({column_defs})")
    counts = {"diabetes": copy_rows(cursor, "diabetes", header, rows)}
    target = header.index("readmitted")
    features = [name for name in header if name != "readmitted"]
    feature_defs = ", ".join(f"{quote_ident(name)} {'integer' if is_int else 'text'}"
                             for name, is_int in zip(header, integer) if name != "readmitted")
    for split, index in zip(SPLITS, _shuffled_split(len(rows), (80, 10, 10), seed)):
        table = quote_ident(f"uci_diabetes_{split}")
        cursor.execute(f"CREATE TABLE {table} ({feature_defs}, label smallint NOT NULL)")
        split_rows = ([value for i, value in enumerate(rows[r]) if i != target]
                      + [int(rows[r][target] == "<30")] for r in index.tolist())
        counts[f"uci_diabetes_{split}"] = copy_rows(cursor, table, features + ["label"], split_rows)
    return counts


def load_criteo(cursor, folder: Path, seed: int = 2024) -> dict[str, int]:
    """``criteo``: the 1,000-row Kaggle sample (id, label, i1..i13 bigint, c1..c26 text; empty
    cells are NULL); ``criteo_{split}``: the same rows split 70/20/10 by a fixed-seed shuffle."""
    path = folder / "criteo" / "criteo_kaggle_train_head1000.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        cells = line.split("\t")
        if len(cells) != 40:
            raise ValueError(f"{path}:{number}: expected 40 tab-separated cells, got {len(cells)}")
        rows.append([number] + [cell if cell != "" else None for cell in cells])
    columns = (["id", "label"] + [f"i{i}" for i in range(1, 14)]
               + [f"c{i}" for i in range(1, 27)])
    definition = ("id bigint PRIMARY KEY, label smallint NOT NULL, "
                  + ", ".join(f"i{i} bigint" for i in range(1, 14)) + ", "
                  + ", ".join(f"c{i} text" for i in range(1, 27)))
    cursor.execute("DROP TABLE IF EXISTS criteo")
    _drop_split_tables(cursor, "criteo")
    cursor.execute(f"CREATE TABLE criteo ({definition})")
    counts = {"criteo": copy_rows(cursor, "criteo", columns, rows)}
    for split, index in zip(SPLITS, _shuffled_split(len(rows), (70, 20, 10), seed)):
        table = quote_ident(f"criteo_{split}")
        cursor.execute(f"CREATE TABLE {table} ({definition})")
        counts[f"criteo_{split}"] = copy_rows(cursor, table, columns,
                                              (rows[r] for r in sorted(index.tolist())))
    return counts


LOADERS = {"frappe": load_frappe, "uci_diabetes": load_uci_diabetes, "criteo": load_criteo}


def load_dataset(connection, name: str, folder: Path | None = None) -> dict[str, int]:
    """Load dataset ``name`` through a psycopg2 ``connection`` in one transaction.

    Returns {table: rows}. Raises ``KeyError`` for an unknown name and ``FileNotFoundError``
    when the data folder lacks the dataset's files.
    """
    if name not in LOADERS:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(sorted(LOADERS))}")
    folder = Path(folder) if folder else data_dir()
    if not (folder / name).is_dir():
        raise FileNotFoundError(f"{folder / name} not found (set TRAILS_DATA_DIR or pass DATA_DIR)")
    with connection:
        with connection.cursor() as cursor:
            counts = LOADERS[name](cursor, folder)
            for table in counts:
                cursor.execute(f"ANALYZE {quote_ident(table)}")
    return counts


def main(argv: list[str] | None = None) -> int:
    import psycopg2

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(LOADERS))
    parser.add_argument("data_dir", nargs="?", default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        connection = psycopg2.connect("")
    except psycopg2.OperationalError as error:
        print(f"load_dataset: cannot connect ({error.args[0].strip()}); set PGHOST, PGPORT, "
              "PGUSER, PGDATABASE as for psql", file=sys.stderr)
        return 2
    try:
        counts = load_dataset(connection, args.name, args.data_dir)
    except (KeyError, FileNotFoundError, ValueError) as error:
        print(f"load_dataset: {error}", file=sys.stderr)
        return 2
    finally:
        connection.close()
    for table, rows in counts.items():
        print(f"{table}: {rows} rows")
    print(f"loaded {args.name} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
