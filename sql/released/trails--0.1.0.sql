-- trails 0.1.0 as released (commit 9275e47): kept so that ALTER EXTENSION trails UPDATE can start from it; do not edit
\echo Use "CREATE EXTENSION trails CASCADE" to load this file. \quit

-- sql/00_check_python.sql
-- trails: fail early, with a clear message, if PL/Python cannot import the trails package.
-- `make install` puts the package into the venv and adds the venv's site-packages to PYTHONPATH
-- in the cluster's environment file; this check runs when CREATE EXTENSION does.
DO LANGUAGE plpython3u $check$
try:
    import trails, numpy
except ImportError as error:
    plpy.error("trails: PL/Python cannot import the trails package or its dependencies: %s" % error,
               detail="the backend's Python looks in: %s" % ", ".join(__import__("sys").path),
               hint="run `make install` from the trails repository (it installs the package into "
                    "the venv and adds the venv to PYTHONPATH in the cluster's environment file), "
                    "or put the venv's site-packages on the server's PYTHONPATH yourself")
$check$;

-- sql/01_schema.sql
-- trails: the extension's own tables live in schema trails.
CREATE SCHEMA trails;

-- One row per (train table, label, row count, layout settings): how rows become feature ids.
CREATE TABLE trails.layouts (
    layout_id   bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    train_table text NOT NULL,
    label       text NOT NULL,
    train_rows  bigint NOT NULL,
    settings    text NOT NULL,
    layout      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (train_table, label, train_rows, settings)
);
SELECT pg_catalog.pg_extension_config_dump('trails.layouts', '');

-- One row per finished model_selection call (written at the end, in a subtransaction with
-- its model: a failed or cancelled call leaves no row).
CREATE TABLE trails.runs (
    run_id      bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    label       text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    budget_s    float8 NOT NULL,
    tfmem       text NOT NULL,
    refinement  text NOT NULL,          -- where the candidates trained: 'service' | 'backend'
    n_scored    int NOT NULL,
    k_refined   int NOT NULL,
    u           int NOT NULL,
    t1          float8 NOT NULL,        -- measured seconds to score one arch
    t2          float8 NOT NULL,        -- measured seconds per training epoch of one model
    phases      jsonb NOT NULL,         -- seconds per phase, rung results, deadline flags
    best_arch   text NOT NULL,
    valid_auc   float8,
    test_auc    float8,
    elapsed_s   float8 NOT NULL,
    seed        int NOT NULL,           -- model_selection's seed argument
    status      text NOT NULL DEFAULT 'done',
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.runs', '');

-- The selected models: architecture, encoding (layout) and weights (torch state_dict).
CREATE TABLE trails.models (
    model_id    bigserial PRIMARY KEY,
    run_id      bigint REFERENCES trails.runs ON DELETE CASCADE,
    dataset     text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    arch        text NOT NULL,
    hyper       jsonb NOT NULL,         -- n_ids, n_fields, embedding_dim, batch_norm, epochs
    weights     bytea NOT NULL,
    valid_auc   float8,
    test_auc    float8,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.models', '');

-- sql/10_data.sql
-- trails: looking at a dataset the way the models will see it.

-- One row per field of the dataset's layout (then one per skipped column).
CREATE FUNCTION trails.describe(dataset text, label text DEFAULT 'label')
RETURNS TABLE(field int, name text, kind text, sql_type text, cardinality int,
              first_id int, last_id int, missing_id int, unknown_id int, note text)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import describe; return describe(plpy, dataset, label)$$;

-- The first n rows of a split, encoded as the models see them: ids, values, label.
CREATE FUNCTION trails.read_batch(dataset text, n int DEFAULT 32, split text DEFAULT 'train',
                                  label text DEFAULT 'label')
RETURNS TABLE(ids int[], vals float8[], target int)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import read_batch; return read_batch(plpy, dataset, n, split, label)$$;

-- Read and encode n rows (NULL: all) of a split through SPI; how many, and how fast.
CREATE FUNCTION trails.read_batch_stats(dataset text, n int DEFAULT NULL,
                                        split text DEFAULT 'train', label text DEFAULT 'label')
RETURNS TABLE(rows bigint, fields int, n_ids int, positive_rate float8, read_s float8,
              rows_per_s float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import read_batch_stats; return read_batch_stats(plpy, dataset, n, split, label)$$;

-- What the backend's Python sees: versions and paths.
CREATE FUNCTION trails.environment()
RETURNS TABLE(key text, value text)
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import environment; return environment(plpy)$$;

-- sql/20_filtering.sql
-- trails: the filtering phase, inside the database.

-- Score n archs of the dataset's search space with a TFMEM, keep the best k. The same seed
-- gives the same archs and scores.
CREATE FUNCTION filtering_phase(dataset text, n int, k int, tfmem text DEFAULT 'express_flow',
                                strategy text DEFAULT 'evolution', label text DEFAULT 'label',
                                seed int DEFAULT 0)
RETURNS TABLE(rank int, arch text, score float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import filtering_phase; return filtering_phase(plpy, dataset, n, k, tfmem, strategy, label, seed)$$;

-- Split a time budget into N archs scored, K refined, U epochs per first rung.
CREATE FUNCTION coordinator(budget_s float8, t1 float8, t2 float8)
RETURNS TABLE(n int, k int, u int)
LANGUAGE plpython3u IMMUTABLE
AS $$from trails.sql_api import coordinator; return coordinator(plpy, budget_s, t1, t2)$$;

-- t1: seconds to score one arch of the dataset's search space with a TFMEM (measured now).
CREATE FUNCTION profiling_filtering_phase(dataset text, tfmem text DEFAULT 'express_flow',
                                          label text DEFAULT 'label')
RETURNS float8
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import profiling_filtering_phase; return profiling_filtering_phase(plpy, dataset, tfmem, label)$$;

-- Time filtering n archs in the database: reading the batch (SPI) vs scoring.
CREATE FUNCTION benchmark_filtering_latency_in_db(n int, dataset text, batch_size int DEFAULT 32,
                                                  tfmem text DEFAULT 'express_flow',
                                                  label text DEFAULT 'label')
RETURNS TABLE(read_s float8, score_s float8, total_s float8, archs_per_s float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import benchmark_filtering_latency_in_db; return benchmark_filtering_latency_in_db(plpy, n, dataset, batch_size, tfmem, label)$$;

-- sql/30_model_selection.sql
-- trails: the product — select, store and use a model within a time budget.

-- Select a model for the dataset within budget_s seconds; store it; return one row.
-- seed fixes every random choice (filtering, initial weights, shuffling); trails.runs records it.
CREATE FUNCTION model_selection(dataset text, budget_s float8, label text DEFAULT 'label',
                                tfmem text DEFAULT 'express_flow', refinement text DEFAULT 'auto',
                                seed int DEFAULT 0)
RETURNS TABLE(run_id bigint, best_arch text, valid_auc float8, test_auc float8, n_scored int,
              k_refined int, u int, elapsed_s float8, model_id bigint)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import model_selection; return model_selection(plpy, dataset, budget_s, label, tfmem, refinement, seed)$$;

-- What model_selection would do with this budget (t1, t2 and the per-arch cost model measured
-- now), without doing it: phases in seconds, the cost cap on candidates, the cost model as jsonb.
CREATE FUNCTION model_selection_plan(dataset text, budget_s float8, label text DEFAULT 'label',
                                     tfmem text DEFAULT 'express_flow')
RETURNS TABLE(t1 float8, t2 float8, n int, k int, u int, rungs text, profile_s float8,
              load_s float8, filtering_s float8, refinement_s float8, finish_s float8,
              test_and_store_s float8, total_s float8, rungs_json jsonb, epoch_cap_s float8,
              cost_model jsonb)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import model_selection_plan; return model_selection_plan(plpy, dataset, budget_s, label, tfmem)$$;

-- P(positive class) of one row of the dataset's table type under a stored model.
-- PL/Python cannot take a polymorphic row, so the row travels as jsonb (PostgreSQL's own
-- rendering of each column) to the PL/Python function below.
CREATE FUNCTION trails.predict(model_id bigint, row_value anyelement)
RETURNS float8
LANGUAGE sql STABLE
AS $$SELECT trails.predict_jsonb(model_id, to_jsonb(row_value))$$;

CREATE FUNCTION trails.predict_jsonb(model_id bigint, row_value jsonb)
RETURNS float8
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import predict; return predict(plpy, model_id, row_value)$$;

-- (id, score) for every row of a table (id: its "id" column, else the row number).
CREATE FUNCTION trails.predict_table(model_id bigint, tbl regclass)
RETURNS TABLE(id bigint, score float8)
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import predict_table; return predict_table(plpy, model_id, tbl)$$;

-- The refinement service's jobs, to watch a run from a second session.
CREATE FUNCTION trails.jobs()
RETURNS TABLE(job_id text, status text, progress float8, message text, dataset text, k int,
              elapsed_s float8, winner text, valid_auc float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import jobs; return jobs(plpy)$$;
