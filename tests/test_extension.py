"""The extension installs into a brand-new database and PL/Python imports the trails stack."""

import psycopg2
import pytest


def test_create_extension_in_a_brand_new_database(trails_server):
    admin = psycopg2.connect(trails_server.dsn("postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS brand_new")
        cursor.execute("CREATE DATABASE brand_new")
    try:
        connection = psycopg2.connect(trails_server.dsn("brand_new"))
        with connection, connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION trails CASCADE")
            cursor.execute("SELECT extname FROM pg_extension ORDER BY 1")
            assert [row[0] for row in cursor.fetchall()] == ["plpgsql", "plpython3u", "trails"]
            cursor.execute("SELECT key, value FROM trails.environment()")
            environment = dict(cursor.fetchall())
            cursor.execute("SELECT to_regclass('trails.layouts') IS NOT NULL")
            assert cursor.fetchone()[0]
        connection.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP DATABASE brand_new")
        admin.close()
    assert environment["python"] == "3.11.2"  # the interpreter PL/Python embeds
    assert environment["torch"].startswith("2.13.0")
    assert environment["numpy"][0].isdigit() and environment["sklearn"][0].isdigit()


def test_drop_extension_removes_its_schema(sql):
    sql("DROP EXTENSION trails")
    assert sql("SELECT to_regnamespace('trails')")[0][0] is None
    sql("CREATE EXTENSION trails")
    assert sql("SELECT count(*) FROM trails.layouts")[0][0] == 0


def _source(sql, function):
    return sql("SELECT p.prosrc, l.lanname FROM pg_proc p JOIN pg_language l"
               " ON l.oid = p.prolang WHERE p.oid = %s::regproc", function)[0]


@pytest.mark.parametrize("function", ["describe", "read_batch", "read_batch_stats"])
def test_functions_are_plpython_one_liners_behind_a_plpgsql_wrapper(sql, function):
    body, language = _source(sql, f"trails.py_{function}")
    assert language == "plpython3u"
    assert body.startswith(f"from trails.sql_api import {function}; return {function}(plpy")
    assert "\n" not in body.strip()
    body, language = _source(sql, f"trails.{function}")  # what users call: re-raises without traceback
    assert language == "plpgsql"
    assert f"trails.py_{function}(" in body and "GET STACKED DIAGNOSTICS" in body
