"""The SPI reader (in the database) and the psycopg2 reader (out of it) agree exactly."""

import numpy as np
import pytest

from trails.data.pg import read_batch_pg


@pytest.mark.parametrize("dataset, label, n", [("frappe", "label", 2_000),
                                                ("uci_diabetes", "label", 1_000),
                                                ("diabetes", "readmitted", 500),
                                                ("criteo", "label", 700)])
def test_spi_and_psycopg2_return_identical_arrays(sql, pg2, dataset, label, n):
    rows = sql("SELECT ids, vals, target FROM trails.read_batch(%s, %s, 'train', %s)",
               dataset, n, label)
    spi_ids = np.array([r[0] for r in rows], dtype=np.int64)
    spi_values = np.array([r[1] for r in rows], dtype=np.float64)
    spi_labels = np.array([r[2] for r in rows], dtype=np.float64).astype(np.int64)

    out = read_batch_pg(pg2, dataset, n, "train", label)
    assert len(out) == len(rows) == n
    assert np.array_equal(out.ids, spi_ids)
    assert np.array_equal(out.values.astype(np.float64), spi_values)
    assert np.array_equal(out.labels, spi_labels)
    assert len(np.unique(out.labels)) >= 2


def test_whole_split_stats_through_spi(sql):
    rows, fields, n_ids, positive_rate, read_s, rows_per_s = sql(
        "SELECT * FROM trails.read_batch_stats('frappe')")[0]
    assert (rows, fields, n_ids) == (202_027, 10, 5_382 + 2 * 10)
    assert 0.32 < positive_rate < 0.35
    assert read_s > 0 and rows_per_s > 0


# --- the column reader (trails.data.columnar) against the row reader -------------------------

from trails.data.batches import EncodedRows, iter_encoded  # noqa: E402
from trails.data.columnar import columnar_source  # noqa: E402
from trails.data.dataset import resolve_dataset  # noqa: E402
from trails.data.layout_store import get_or_create_layout  # noqa: E402
from trails.data.session import PgSession  # noqa: E402

READERS_AGREE = """
CREATE FUNCTION pg_temp.readers_agree(dataset text, label text, split text, lim int, chunk int)
RETURNS text LANGUAGE plpython3u AS $$
import numpy as np
from trails.data.batches import EncodedRows, iter_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.session import SpiSession
session = SpiSession(plpy)
resolved = resolve_dataset(session, dataset)
layout = get_or_create_layout(session, resolved, label)
read = {reader: EncodedRows.concatenate(list(iter_encoded(session, resolved, layout, split, lim, chunk,
                                                          ordered=True, reader=reader)), layout.n_fields)
        for reader in ("rows", "columns")}
a, b = read["rows"], read["columns"]
for name in ("ids", "values", "labels"):
    x, y = getattr(a, name), getattr(b, name)
    if x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
        return f"{name} differ: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
return f"equal {len(a)}"
$$
"""


def _read(connection, dataset, label, split, limit, chunk_rows, reader):
    session = PgSession(connection)
    resolved = resolve_dataset(session, dataset)
    layout = get_or_create_layout(session, resolved, label)
    parts = list(iter_encoded(session, resolved, layout, split, limit, chunk_rows, ordered=True, reader=reader))
    connection.commit()
    return EncodedRows.concatenate(parts, layout.n_fields)


def _assert_identical(a, b):
    for name in ("ids", "values", "labels"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


def _assert_readers_agree(sql, pg2, dataset, label, split, limit, chunk_rows):
    """Bit for bit the same arrays from both readers, through psycopg2 and through SPI."""
    rows = _read(pg2, dataset, label, split, limit, chunk_rows, "rows")
    columns = _read(pg2, dataset, label, split, limit, chunk_rows, "columns")
    _assert_identical(rows, columns)
    assert sql("SELECT pg_temp.readers_agree(%s, %s, %s, %s, %s)",
               dataset, label, split, limit, chunk_rows)[0][0] == f"equal {len(rows)}"
    return rows


@pytest.mark.parametrize("dataset, label", [("frappe", "label"), ("uci_diabetes", "label"),
                                            ("diabetes", "readmitted"), ("criteo", "label")])
def test_column_reader_matches_the_row_reader(sql, pg2, dataset, label):
    sql(READERS_AGREE)
    for split in ("train", "valid", "test"):
        whole = _assert_readers_agree(sql, pg2, dataset, label, split, None, 1000)
        assert len(whole) > 0
    for limit in (1000, 2500, 4321):  # a limit under chunk_rows is read as rows
        assert len(_assert_readers_agree(sql, pg2, dataset, label, "train", limit, 1000)) == min(limit, 700 if dataset == "criteo" else limit)


EDGE_TABLE = r"""
CREATE TYPE edge_color AS ENUM ('red', 'green', 'blue');
CREATE TABLE edge_rows (id integer, word text, longword text, color edge_color, small integer,
                        big bigint, flag boolean, x float8, amount numeric(10, 3), kind text,
                        target float8);
INSERT INTO edge_rows
SELECT i,
       CASE i % 9 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'ünï' || (i % 5) WHEN 3 THEN E'a\nb'
                  WHEN 4 THEN CASE WHEN i > 3000 THEN E'x\x1fy' ELSE 'late' END ELSE 'w' || (i % 13) END,
       repeat('long value ', 8) || (i % 4),
       CASE WHEN i % 10 = 0 THEN NULL ELSE (ARRAY['red', 'green', 'blue'])[1 + i % 3]::edge_color END,
       CASE WHEN i % 8 = 0 THEN NULL ELSE i % 6 - 2 END,
       CASE WHEN i % 12 = 0 THEN NULL ELSE 9007199254740993 + i % 3 END,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END,
       CASE i % 17 WHEN 0 THEN NULL WHEN 1 THEN 'NaN' WHEN 2 THEN 'Infinity' WHEN 3 THEN '-Infinity'
                   ELSE sin(i) * 1e3 END,
       CASE WHEN i % 19 = 0 THEN NULL ELSE (i % 1000) / 7.0 END,
       CASE WHEN i % 23 = 0 THEN NULL ELSE (ARRAY['a', 'b', 'ç'])[1 + i % 3] END,
       CASE WHEN i % 29 = 0 THEN NULL ELSE cos(i) * 50 END
FROM generate_series(1, 6000) AS i;
DELETE FROM edge_rows WHERE id % 11 = 0;
CREATE VIEW vedge_rows AS SELECT * FROM edge_rows;
"""


@pytest.mark.parametrize("label", ["target", "kind"])
def test_column_reader_on_nulls_text_numerics_and_a_new_enum_label(sql, pg2, label):
    sql(READERS_AGREE)
    sql(EDGE_TABLE)
    session = PgSession(pg2)
    layout = get_or_create_layout(session, resolve_dataset(session, "edge_rows"), label)
    pg2.commit()
    kinds = {f.name: f.kind for f in layout.fields}
    assert kinds["x"] == kinds["amount"] == "numeric"
    assert all(kinds[c] == "categorical" for c in ("word", "longword", "color", "small", "big", "flag"))
    sql("ALTER TYPE edge_color ADD VALUE 'violet'")  # a label the layout has never seen: unknown
    sql("UPDATE edge_rows SET color = 'violet' WHERE id % 31 = 0")
    for split in ("train", "valid", "test"):
        _assert_readers_agree(sql, pg2, "edge_rows", label, split, None, 200)  # a \x1f mid-split
    _assert_readers_agree(sql, pg2, "edge_rows", label, "train", 777, 200)
    train = _read(pg2, "edge_rows", label, "train", None, 200, "columns")
    word = layout.fields[[f.name for f in layout.fields].index("word")]
    assert word.missing_id in train.ids and word.first_id + word.values.index("x\x1fy") in train.ids


def test_a_view_is_read_as_rows(sql, pg2):
    sql(EDGE_TABLE)
    session = PgSession(pg2)
    assert columnar_source(session, resolve_dataset(session, "vedge_rows"), "train", 1000) is None
    assert columnar_source(session, resolve_dataset(session, "edge_rows"), "train", 1000) is not None
    view = _read(pg2, "vedge_rows", "target", "train", None, 500, "columns")
    table = _read(pg2, "edge_rows", "target", "train", None, 500, "rows")
    assert len(view) == len(table) > 3000


# --- any table, for trails.predict_table (trails.data.table_reader) ----------------------------

from trails.data.columnar import paged_source  # noqa: E402
from trails.data.table_reader import _columns, _rows, iter_table  # noqa: E402


def _table_chunks(chunks):
    keys, ids, values = [], [], []
    for k, i, v in chunks:
        keys.extend(k)
        ids.append(i)
        values.append(v)
    return keys, np.concatenate(ids), np.concatenate(values)


@pytest.mark.parametrize("key", ["id", None])
def test_any_table_reads_the_same_through_columns_and_rows(sql, pg2, key):
    """Keys (the id column, NULL kept; or row numbers), ids and values bit for bit alike, on
    NULLs, enums, text holding the column reader's separator (read again as bytes) and numerics."""
    sql(EDGE_TABLE)
    sql("UPDATE edge_rows SET id = NULL WHERE id % 13 = 0")  # NULL keys travel as None
    sql("CREATE TABLE edge_copy AS SELECT * FROM edge_rows ORDER BY ctid")  # one physical order, no gaps
    session = PgSession(pg2)
    layout = get_or_create_layout(session, resolve_dataset(session, "edge_rows"), "target")
    pg2.commit()
    source = paged_source(session, "edge_copy", 200)
    by_columns = _table_chunks(_columns(session, layout, source, key))
    by_rows = _table_chunks(_rows(session, layout, "edge_copy", key, 200))
    pg2.commit()
    assert by_columns[0] == by_rows[0] and len(by_rows[0]) == sql("SELECT count(*) FROM edge_copy")[0][0]
    if key:
        assert None in by_columns[0] and 1 in by_columns[0]
    else:
        assert by_columns[0] == list(range(1, len(by_columns[0]) + 1))
    for x, y in zip(by_columns[1:], by_rows[1:]):
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    assert paged_source(session, "vedge_rows", 200) is None  # a view: rows
    view = _table_chunks(iter_table(session, layout, "vedge_rows", key, 200))
    pg2.commit()
    assert len(view[0]) == len(by_rows[0])


def test_a_text_category_scored_from_an_integer_column_is_read_as_text(sql, pg2):
    """A model trained on text in a column scores a table holding integers there: the column
    reader reads them as text (what the row reader's ::text gives), not as numbers."""
    sql(EDGE_TABLE)
    session = PgSession(pg2)
    layout = get_or_create_layout(session, resolve_dataset(session, "edge_rows"), "target")
    pg2.commit()
    sql("CREATE TABLE edge_ints AS SELECT id, (id % 15)::integer AS word, longword, color, small, big, flag, x,"
        " amount, kind, target FROM edge_rows")
    by_columns = _table_chunks(_columns(session, layout, paged_source(session, "edge_ints", 200), "id"))
    by_rows = _table_chunks(_rows(session, layout, "edge_ints", "id", 200))
    pg2.commit()
    assert by_columns[0] == by_rows[0]
    for x, y in zip(by_columns[1:], by_rows[1:]):
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    word = [f.name for f in layout.fields].index("word")
    assert set(np.unique(by_columns[1][:, word])) <= {layout.fields[word].unknown_id}  # no integer is a text value
