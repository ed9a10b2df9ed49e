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
