"""The three datasets as loaded by scripts/load_dataset.sh's loaders."""

import gzip
import subprocess

import numpy as np

from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.libsvm import read_libsvm
from trails.data.session import PgSession

from conftest import DATA_DIR, REPO

# ARM-Net's per-field id ranges (shared/data/README.md; every id 0..5381 is some field's).
ARMNET_FRAPPE_RANGES = [(0, 956), (957, 5038), (5039, 5045), (5046, 5052), (5053, 5054),
                        (5055, 5057), (5058, 5059), (5060, 5068), (5069, 5148), (5149, 5381)]


def test_frappe_counts_and_types(sql):
    counts = sql("SELECT (SELECT count(*) FROM frappe_train), (SELECT count(*) FROM frappe_valid),"
                 " (SELECT count(*) FROM frappe_test)")[0]
    assert counts == (202_027, 57_722, 28_860)
    positives = sql("SELECT sum(label) FROM (SELECT label FROM frappe_train UNION ALL"
                    " SELECT label FROM frappe_valid UNION ALL SELECT label FROM frappe_test) s")
    assert positives[0][0] == 96_203  # one positive per raw log row, two negatives each
    types = dict(sql("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                     " WHERE attrelid = 'frappe_train'::regclass AND attnum > 0"))
    assert types["label"] == "smallint" and types["user_id"] == "frappe_user"
    assert types["city"] == "frappe_city"
    ids = sql("SELECT min(id), max(id), count(DISTINCT id) FROM (SELECT id FROM frappe_train"
              " UNION ALL SELECT id FROM frappe_valid UNION ALL SELECT id FROM frappe_test) s")
    assert ids[0] == (1, 288_609, 288_609)


def test_frappe_layout_reproduces_armnet_ids(pg2):
    session = PgSession(pg2)
    layout = get_or_create_layout(session, resolve_dataset(session, "frappe"), "label")
    ranges = [(f.first_id, f.last_id) for f in layout.fields]
    assert [f.name for f in layout.fields] == ["user_id", "item_id", "daytime", "weekday",
                                               "isweekend", "homework", "cost", "weather",
                                               "country", "city"]
    assert ranges == ARMNET_FRAPPE_RANGES
    assert sum(f.cardinality for f in layout.fields) == 5_382

    # Every positive of ARM-Net's valid.libsvm, decoded through our dictionaries, is a raw log row.
    with gzip.open(DATA_DIR / "frappe" / "raw_frappe.csv.gz", "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        keep = [header.index(c) for c in ("user", "item", "daytime", "weekday", "isweekend",
                                          "homework", "cost", "weather", "country", "city")]
        log = {tuple(line.rstrip("\n").split("\t")[i] for i in keep) for line in handle}
    labels, ids = read_libsvm(DATA_DIR / "frappe" / "valid.libsvm")
    starts = np.array([f.first_id for f in layout.fields])
    decoded = 0
    for row in ids[labels == 1]:
        fields = np.searchsorted(starts, row, side="right") - 1
        assert list(fields) == list(range(10))
        values = tuple(layout.fields[f].values[i - starts[f]] for f, i in zip(fields, row))
        assert values in log, values
        decoded += 1
    assert decoded == 19_063


def test_uci_diabetes_raw_table_and_splits(sql):
    assert sql("SELECT count(*) FROM diabetes")[0][0] == 101_766
    columns = sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'diabetes'::regclass"
                  " AND attnum > 0")[0][0]
    assert columns == 50
    assert sql("SELECT count(*) FROM diabetes WHERE readmitted = '<30'")[0][0] == 11_357
    split = sql("SELECT (SELECT count(*) FROM uci_diabetes_train),"
                " (SELECT count(*) FROM uci_diabetes_valid), (SELECT count(*) FROM uci_diabetes_test),"
                " (SELECT sum(label) FROM (SELECT label FROM uci_diabetes_train UNION ALL SELECT label"
                "  FROM uci_diabetes_valid UNION ALL SELECT label FROM uci_diabetes_test) s)")[0]
    assert split == (81_412, 10_177, 10_177, 11_357)
    # '?' in the CSV is NULL; integer columns stay integer.
    assert sql("SELECT count(*) FROM diabetes WHERE weight IS NULL")[0][0] > 90_000
    assert sql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE"
               " attrelid = 'diabetes'::regclass AND attname = 'time_in_hospital'")[0][0] == "integer"


def test_criteo_sample_keeps_empties_as_null(sql):
    assert sql("SELECT count(*) FROM criteo")[0][0] == 1_000
    assert sql("SELECT count(*) FROM criteo_train")[0][0] == 700
    nulls = sql("SELECT count(*) FILTER (WHERE i1 IS NULL), count(*) FILTER (WHERE c26 IS NULL)"
                " FROM criteo")[0]
    assert nulls[0] > 0 and nulls[1] > 0
    assert sql("SELECT c1 FROM criteo WHERE c1 IS NOT NULL LIMIT 1")[0][0].isalnum()


def test_load_dataset_script_uses_libpq_environment(trails_server, sql, postgresql):
    info = postgresql.info
    env = {"PATH": "/usr/bin:/bin", "PGHOST": info.host, "PGPORT": str(info.port),
           "PGUSER": info.user, "PGDATABASE": info.dbname, "TRAILS_DATA_DIR": str(DATA_DIR)}
    sql("DROP TABLE criteo, criteo_train, criteo_valid, criteo_test")
    run = subprocess.run(["bash", str(REPO / "scripts" / "load_dataset.sh"), "criteo"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "criteo_train: 700 rows" in run.stdout
    assert sql("SELECT count(*) FROM criteo_test")[0][0] == 100
    bad = subprocess.run(["bash", str(REPO / "scripts" / "load_dataset.sh"), "nope"],
                         env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "invalid choice" in bad.stderr
