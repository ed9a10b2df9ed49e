-- trails: looking at a dataset the way the models will see it.
-- (Each entry point: a PL/pgSQL wrapper around trails.py_*, without traceback: see 02_errors.sql.)

-- One row per field of the dataset's layout (then one per skipped column).
CREATE FUNCTION trails.py_describe(dataset text, label text, task text)
RETURNS TABLE(field int, name text, kind text, sql_type text, cardinality int,
              first_id int, last_id int, missing_id int, unknown_id int, note text)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import describe; return describe(plpy, dataset, label, task)$$;

CREATE FUNCTION trails.describe(dataset text, label text DEFAULT 'label', task text DEFAULT 'auto')
RETURNS TABLE(field int, name text, kind text, sql_type text, cardinality int,
              first_id int, last_id int, missing_id int, unknown_id int, note text)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_describe($1, $2, $3);
-- @reraise
END$$;

-- The first n rows of a split, encoded as the models see them: ids, values, target (the class
-- index, or the standardised value of a regression label).
CREATE FUNCTION trails.py_read_batch(dataset text, n int, split text, label text)
RETURNS TABLE(ids int[], vals float8[], target float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import read_batch; return read_batch(plpy, dataset, n, split, label)$$;

CREATE FUNCTION trails.read_batch(dataset text, n int DEFAULT 32, split text DEFAULT 'train',
                                  label text DEFAULT 'label')
RETURNS TABLE(ids int[], vals float8[], target float8)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_read_batch($1, $2, $3, $4);
-- @reraise
END$$;

-- Read and encode n rows (NULL: all) of a split through SPI; how many, and how fast
-- (positive_rate: binary labels only).
CREATE FUNCTION trails.py_read_batch_stats(dataset text, n int, split text, label text)
RETURNS TABLE(rows bigint, fields int, n_ids int, positive_rate float8, read_s float8,
              rows_per_s float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import read_batch_stats; return read_batch_stats(plpy, dataset, n, split, label)$$;

CREATE FUNCTION trails.read_batch_stats(dataset text, n int DEFAULT NULL,
                                        split text DEFAULT 'train', label text DEFAULT 'label')
RETURNS TABLE(rows bigint, fields int, n_ids int, positive_rate float8, read_s float8,
              rows_per_s float8)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_read_batch_stats($1, $2, $3, $4);
-- @reraise
END$$;

-- What the backend's Python sees: versions and paths.
CREATE FUNCTION trails.environment()
RETURNS TABLE(key text, value text)
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import environment; return environment(plpy)$$;
