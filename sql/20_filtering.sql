-- trails: the filtering phase, inside the database.
-- (Each entry point: a PL/pgSQL wrapper around trails.py_*, without traceback: see 02_errors.sql.)

-- Score n archs of the dataset's search space with a TFMEM, keep the best k. The same seed
-- gives the same archs and scores.
CREATE FUNCTION trails.py_filtering_phase(dataset text, n int, k int, tfmem text, strategy text,
                                          label text, seed int)
RETURNS TABLE(rank int, arch text, score float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import filtering_phase; return filtering_phase(plpy, dataset, n, k, tfmem, strategy, label, seed)$$;

CREATE FUNCTION filtering_phase(dataset text, n int, k int, tfmem text DEFAULT 'express_flow',
                                strategy text DEFAULT 'evolution', label text DEFAULT 'label',
                                seed int DEFAULT 0)
RETURNS TABLE(rank int, arch text, score float8)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_filtering_phase($1, $2, $3, $4, $5, $6, $7);
-- @reraise
END$$;

-- Split a time budget into N archs scored, K refined, U epochs per first rung
-- (STABLE, not IMMUTABLE: it reads eta, ratio and max_epochs from config.ini).
CREATE FUNCTION trails.py_coordinator(budget_s float8, t1 float8, t2 float8)
RETURNS TABLE(n int, k int, u int)
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import coordinator; return coordinator(plpy, budget_s, t1, t2)$$;

CREATE FUNCTION coordinator(budget_s float8, t1 float8, t2 float8)
RETURNS TABLE(n int, k int, u int)
LANGUAGE plpgsql STABLE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_coordinator($1, $2, $3);
-- @reraise
END$$;

-- t1: seconds to score one arch of the dataset's search space with a TFMEM (measured now).
CREATE FUNCTION trails.py_profiling_filtering_phase(dataset text, tfmem text, label text)
RETURNS float8
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import profiling_filtering_phase; return profiling_filtering_phase(plpy, dataset, tfmem, label)$$;

CREATE FUNCTION profiling_filtering_phase(dataset text, tfmem text DEFAULT 'express_flow',
                                          label text DEFAULT 'label')
RETURNS float8
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN trails.py_profiling_filtering_phase($1, $2, $3);
-- @reraise
END$$;

-- Time filtering n archs in the database: reading the batch (SPI) vs scoring.
CREATE FUNCTION trails.py_benchmark_filtering_latency_in_db(n int, dataset text, batch_size int,
                                                            tfmem text, label text)
RETURNS TABLE(read_s float8, score_s float8, total_s float8, archs_per_s float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import benchmark_filtering_latency_in_db; return benchmark_filtering_latency_in_db(plpy, n, dataset, batch_size, tfmem, label)$$;

CREATE FUNCTION benchmark_filtering_latency_in_db(n int, dataset text, batch_size int DEFAULT 32,
                                                  tfmem text DEFAULT 'express_flow',
                                                  label text DEFAULT 'label')
RETURNS TABLE(read_s float8, score_s float8, total_s float8, archs_per_s float8)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_benchmark_filtering_latency_in_db($1, $2, $3, $4, $5);
-- @reraise
END$$;
