"""Dataset names: one identifier in the search_path, or schema-qualified ('public.frappe'), with
double-quoted parts for dots; a name is never spliced into SQL raw."""

import psycopg2
import pytest

from trails.data.dataset import name_parts


@pytest.mark.parametrize("name, parts", [
    ("frappe", ["frappe"]), ("public.frappe", ["public", "frappe"]), ("Public.Frappe", ["Public", "Frappe"]),
    ('"a.b".c', ["a.b", "c"]), ('public."a.b"', ["public", "a.b"]), ('"x"', ["x"]), ('"say ""hi"""', ['say "hi"']),
    ("a.b.c", ["a", "b", "c"]), (".frappe", None), ("public.", None), ("a..b", None), ('"open', None),
    ('"a"b', None), ('a"b"', None),
])
def test_name_parts(name, parts):
    assert name_parts(name) == parts


@pytest.fixture
def other_schema(sql):
    """Schema ``other`` with a table ``frappe`` of other columns, a same-named dataset as public's."""
    sql("CREATE SCHEMA other; CREATE TABLE other.frappe (colour text, size int, label int);"
        " INSERT INTO other.frappe SELECT (ARRAY['red','green'])[1 + i % 2], i % 7, i % 2"
        " FROM generate_series(1, 300) i")
    return sql


def _fields(sql, dataset):
    return [row[1] for row in sql("SELECT * FROM trails.describe(%s)", dataset) if row[0] is not None]


def test_a_schema_qualified_name_resolves_in_that_schema(other_schema):
    sql = other_schema
    frappe_fields = _fields(sql, "frappe")
    assert _fields(sql, "public.frappe") == frappe_fields
    assert _fields(sql, "other.frappe") == ["colour", "size"]
    assert _fields(sql, '"other"."frappe"') == ["colour", "size"]
    sql("SET search_path = other, public")
    assert _fields(sql, "frappe") == frappe_fields  # unqualified: split tables first, as always
    assert _fields(sql, "other.frappe") == ["colour", "size"]
    assert _fields(sql, "public.frappe") == frappe_fields
    assert len(sql("SELECT * FROM trails.read_batch('public.frappe', 5)")) == 5


def test_names_holding_dots_keep_resolving(sql):
    sql('CREATE TABLE "dotted.name" (colour text, label int); CREATE SCHEMA "odd.schema";'
        ' CREATE TABLE "odd.schema".t (size int, label int);'
        " INSERT INTO \"dotted.name\" SELECT 'c' || i % 3, i % 2 FROM generate_series(1, 300) i;"
        ' INSERT INTO "odd.schema".t SELECT i % 5, i % 2 FROM generate_series(1, 300) i')
    assert _fields(sql, "dotted.name") == ["colour"]  # the whole name first: the table "dotted.name"
    assert _fields(sql, '"dotted.name"') == ["colour"]
    assert _fields(sql, 'public."dotted.name"') == ["colour"]
    assert _fields(sql, '"odd.schema".t') == ["size"]


def test_an_unknown_qualified_name_lists_that_schemas_datasets(other_schema, pg2):
    with pytest.raises(psycopg2.Error) as caught, pg2.cursor() as cursor:
        cursor.execute("SELECT * FROM trails.describe('other.nope')")
    pg2.rollback()
    diag = caught.value.diag
    assert diag.message_primary == 'trails: dataset "other.nope" not found'
    assert 'in schema "other"' in diag.message_detail
    assert diag.message_hint == "known datasets: other.frappe"
    with pytest.raises(psycopg2.Error) as caught, pg2.cursor() as cursor:
        cursor.execute("SELECT * FROM trails.describe('nowhere.frappe')")
    pg2.rollback()
    assert caught.value.diag.message_primary == 'trails: dataset "nowhere.frappe" not found'


def test_model_selection_plan_and_filtering_take_a_qualified_name(sql):
    plan = sql("SELECT n, k FROM model_selection_plan('public.frappe', 30)")
    assert plan and plan[0][0] >= 1
    top = sql("SELECT * FROM filtering_phase('public.frappe', 50, 3)")
    assert len(top) == 3
