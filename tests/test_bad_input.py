"""Bad arguments raise a PostgreSQL ERROR with a HINT; nothing is written, no table touched."""

import psycopg2
import pytest


def _error(pg2, query, *args):
    with pytest.raises(psycopg2.Error) as caught:
        with pg2.cursor() as cursor:
            cursor.execute(query, args or None)
    pg2.rollback()
    diag = caught.value.diag
    assert diag.message_hint, f"no HINT for: {diag.message_primary}"
    assert "internal error" not in diag.message_primary
    assert "Traceback" not in (diag.message_primary + (diag.message_detail or ""))
    return diag


def _count(pg2, query):
    with pg2.cursor() as cursor:
        cursor.execute(query)
        value = cursor.fetchone()[0]
    pg2.rollback()
    return value


def test_unknown_dataset_lists_the_known_ones(pg2):
    diag = _error(pg2, "SELECT * FROM trails.describe('nope')")
    assert diag.message_primary == 'trails: dataset "nope" not found'
    assert diag.sqlstate == "22023"  # invalid_parameter_value
    assert "frappe" in diag.message_hint and "uci_diabetes" in diag.message_hint


def test_injection_attempt_is_just_an_unknown_name(pg2):
    diag = _error(pg2, "SELECT * FROM trails.describe('x; DROP TABLE frappe_train; --')")
    assert "not found" in diag.message_primary
    assert _count(pg2, "SELECT count(*) FROM frappe_train") == 202_027


def test_missing_label_column_lists_columns(pg2):
    diag = _error(pg2, "SELECT * FROM trails.describe('frappe', 'clicked')")
    assert 'label column "clicked" not found' in diag.message_primary
    assert "user_id" in diag.message_hint


@pytest.mark.parametrize("query, message", [
    ("SELECT * FROM trails.read_batch('frappe', 0)", "n must be a positive integer"),
    ("SELECT * FROM trails.read_batch('frappe', -5)", "n must be a positive integer"),
    ("SELECT * FROM trails.read_batch('frappe', 5, 'holdout')", "unknown split 'holdout'"),
    ("SELECT * FROM trails.describe('')", "dataset must be a non-empty table name"),
    ("SELECT * FROM trails.describe(NULL)", "dataset must be a non-empty table name"),
    ("SELECT * FROM trails.describe('frappe', NULL)", "label must name a column"),
])
def test_argument_validation(pg2, query, message):
    assert message in _error(pg2, query).message_primary


def test_empty_and_featureless_tables(pg2):
    with pg2.cursor() as cursor:
        cursor.execute("CREATE TABLE empty_t (a int, label int); CREATE TABLE only_label (label int);"
                       " INSERT INTO only_label VALUES (0), (1)")
    pg2.commit()
    assert "no non-NULL value" in _error(pg2, "SELECT * FROM trails.describe('empty_t')").message_primary
    assert "no column besides the label" in _error(
        pg2, "SELECT * FROM trails.describe('only_label')").message_primary


def test_failures_write_nothing(pg2):
    for query in ("SELECT * FROM trails.describe('nope')",
                  "SELECT * FROM trails.describe('frappe', 'clicked')"):
        _error(pg2, query)
    assert _count(pg2, "SELECT count(*) FROM trails.layouts") == 0


def test_label_checked_before_torch_is_imported(pg_dsn):
    """A single-class label is refused by a fresh backend before it imports torch (seconds)."""
    connection = psycopg2.connect(pg_dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE one_class AS SELECT g AS x, 1 AS label FROM generate_series(1, 200) g")
            cursor.execute("CREATE FUNCTION pg_temp.torch_imported() RETURNS boolean LANGUAGE plpython3u"
                           " AS $$import sys\nreturn 'torch' in sys.modules$$")
        connection.commit()
        diag = _error(connection, "SELECT * FROM model_selection('one_class', 30)")
        assert 'has a single value in the train split' in diag.message_primary
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_temp.torch_imported()")
            assert cursor.fetchone()[0] is False
    finally:
        connection.close()
