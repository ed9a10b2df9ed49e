"""Field layouts inferred from real tables (the raw diabetes CSV as a user loads it)."""

import numpy as np

from trails.data.batches import read_encoded
from trails.data.dataset import resolve_dataset
from trails.data.layout_store import get_or_create_layout
from trails.data.session import PgSession


def _describe(sql, dataset, label="label"):
    rows = sql("SELECT field, name, kind, sql_type, cardinality, first_id, last_id, missing_id,"
               " unknown_id, note FROM trails.describe(%s, %s)", dataset, label)
    return {row[1]: row for row in rows}


def test_raw_diabetes_with_a_text_label(sql):
    fields = _describe(sql, "diabetes", "readmitted")
    # three text values: a multiclass label (task 'auto'), classes in value order
    assert fields["readmitted"][2] == "label: multiclass"
    assert fields["readmitted"][9] == "classes: <30, >30, NO"
    assert fields["encounter_id"][2] == "skipped" and "key" in fields["encounter_id"][9]
    assert fields["race"][2:5] == ("categorical", "text", 5)  # '?' loaded as NULL → missing id
    assert fields["time_in_hospital"][2:5] == ("categorical", "integer", 14)
    assert fields["patient_nbr"][2] == "numeric"  # too many distinct values to be categorical
    used = sorted((r[5], r[6]) for r in fields.values() if r[2] not in ("skipped", "label: multiclass"))
    assert used[0][0] == 0
    assert all(a[1] + 1 == b[0] for a, b in zip(used, used[1:]))  # laid end to end
    extra = sorted(i for r in fields.values() if r[2] not in ("skipped", "label: multiclass") for i in (r[7], r[8]))
    assert extra == list(range(used[-1][1] + 1, used[-1][1] + 1 + len(extra)))


def test_layout_is_stored_once_and_reused(sql):
    _describe(sql, "frappe")
    _describe(sql, "frappe")
    assert sql("SELECT count(*) FROM trails.layouts")[0][0] == 1
    sql("DELETE FROM frappe_train WHERE id IN (SELECT id FROM frappe_train LIMIT 5)")
    _describe(sql, "frappe")  # the train split changed: a new layout, the old one kept
    assert sql("SELECT array_agg(train_rows ORDER BY layout_id) FROM trails.layouts")[0][0] == \
        [202_027, 202_022]


def test_encoding_of_integers_numerics_missing_and_unseen(sql, pg2):
    session = PgSession(pg2)
    dataset = resolve_dataset(session, "uci_diabetes")
    layout = get_or_create_layout(session, dataset, "label")
    index = {f.name: i for i, f in enumerate(layout.fields)}
    race = layout.fields[index["race"]]
    time_field = layout.fields[index["time_in_hospital"]]
    assert time_field.values == [str(v) for v in range(1, 15)]  # integers in numeric order

    train = read_encoded(session, dataset, layout, "train")
    assert train.ids.shape == (81_412, layout.n_fields)
    numeric = layout.fields[index["patient_nbr"]]
    column = train.values[:, index["patient_nbr"]]
    assert abs(column.mean()) < 1e-3 and abs(column.std() - 1) < 1e-3
    assert (train.ids[:, index["patient_nbr"]] == numeric.first_id).all()
    assert (train.ids[:, index["race"]] == race.missing_id).sum() == \
        sql("SELECT count(*) FROM uci_diabetes_train WHERE race IS NULL")[0][0]

    # A category never seen in train maps to the field's unknown id (test rows are only read).
    sql("UPDATE uci_diabetes_test SET race = 'Martian' WHERE ctid = (SELECT min(ctid) FROM"
        " uci_diabetes_test)")
    pg2.commit()
    test = read_encoded(session, dataset, layout, "test")
    assert (test.ids[:, index["race"]] == race.unknown_id).sum() == 1
    assert np.isin(test.ids[:, index["race"]], range(race.first_id, race.last_id + 1)).sum() > 9_000


def test_single_table_is_hash_split_deterministically(sql):
    sizes = {}
    for split in ("train", "valid", "test"):
        sizes[split] = sql("SELECT rows FROM trails.read_batch_stats('diabetes', NULL, %s,"
                           " 'readmitted')", split)[0][0]
    assert sum(sizes.values()) == 101_766
    assert abs(sizes["train"] / 101_766 - 0.7) < 0.01 and abs(sizes["test"] / 101_766 - 0.1) < 0.01
    again = sql("SELECT rows FROM trails.read_batch_stats('diabetes', NULL, 'valid', 'readmitted')")
    assert again[0][0] == sizes["valid"]


def test_numeric_and_bool_columns(sql):
    sql("CREATE TABLE mixed (price numeric, flag boolean, note text, label boolean)")
    sql("INSERT INTO mixed SELECT i * 1.5, i % 2 = 0, CASE WHEN i % 3 = 0 THEN '' ELSE 'n' || (i % 4)"
        " END, i % 5 = 0 FROM generate_series(1, 300) i")
    fields = _describe(sql, "mixed")
    assert fields["price"][2] == "numeric" and fields["flag"][2:5] == ("categorical", "boolean", 2)
    assert fields["note"][4] == 4  # empty strings are "missing", not a category
    rows = sql("SELECT ids, vals, target FROM trails.read_batch('mixed', 300)")
    assert 0 < sum(r[2] for r in rows) < len(rows)
    note_missing = fields["note"][7]
    assert any(r[0][2] == note_missing for r in rows)
