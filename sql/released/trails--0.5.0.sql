-- trails 0.5.0: generated from sql/*.sql by make; do not edit
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

-- One row per (train table, label, row count, layout settings and task): how rows become
-- feature ids. Not UNIQUE on purpose: calls that infer the same new layout at once each store
-- theirs (identical) instead of waiting on each other's transactions; lookups take the first.
CREATE TABLE trails.layouts (
    layout_id   bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    train_table text NOT NULL,
    label       text NOT NULL,
    train_rows  bigint NOT NULL,
    settings    text NOT NULL,
    layout      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    extends_layout bigint REFERENCES trails.layouts  -- a warm start's: that layout, its ids kept (NULL: inferred)
);
CREATE INDEX ON trails.layouts (train_table, label, train_rows, settings);
SELECT pg_catalog.pg_extension_config_dump('trails.layouts', '');
SELECT pg_catalog.pg_extension_config_dump('trails.layouts_layout_id_seq', '');  -- pg_dump keeps where ids go on

-- One row per finished model_selection call (written at the end, in a subtransaction with
-- its model: a failed or cancelled call leaves no row).
CREATE TABLE trails.runs (
    run_id      bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    label       text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    budget_s    float8,                 -- NULL: budgeted in trials (max_trials)
    tfmem       text NOT NULL,
    refinement  text NOT NULL,          -- where the candidates trained: 'service' | 'backend'
    n_scored    int NOT NULL,
    k_refined   int NOT NULL,
    u           int NOT NULL,
    t1          float8 NOT NULL,        -- measured seconds to score one arch
    t2          float8 NOT NULL,        -- measured seconds per training epoch of one model
    phases      jsonb NOT NULL,         -- seconds per phase, rung results, deadline flags
    best_arch   text NOT NULL,
    task        text NOT NULL,          -- 'binary' | 'multiclass' | 'regression'
    metric      text NOT NULL,          -- what selected the model (valid_score, test_score)
    valid_score float8,
    test_score  float8,
    valid_auc   float8,                 -- binary only (NULL otherwise)
    test_auc    float8,
    elapsed_s   float8 NOT NULL,
    seed        int NOT NULL,           -- model_selection's seed argument
    families    text NOT NULL DEFAULT 'mlp',  -- model_selection's families argument (0.2.0: MLPs only)
    family      text NOT NULL DEFAULT 'mlp',  -- the winner's model family (best_arch is its candidate)
    family_scores jsonb,                -- each family's best valid score (the decision sample's)
    warm_start  jsonb,                  -- what a warm start reused (NULL: a cold start)
    status      text NOT NULL DEFAULT 'done',
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.runs', '');
SELECT pg_catalog.pg_extension_config_dump('trails.runs_run_id_seq', '');  -- pg_dump keeps where ids go on

-- The selected models: architecture, encoding (layout) and weights (torch state_dict).
CREATE TABLE trails.models (
    model_id    bigserial PRIMARY KEY,
    run_id      bigint REFERENCES trails.runs ON DELETE CASCADE,
    dataset     text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    arch        text NOT NULL,
    hyper       jsonb NOT NULL,         -- n_ids, n_fields, n_outputs, embedding_dim, batch_norm, epochs, ...
    weights     bytea NOT NULL,
    task        text NOT NULL,          -- the layout's task; metric: what selected it
    metric      text NOT NULL,
    params      bigint NOT NULL,        -- parameters of the MLP (weights, biases, BatchNorm)
    valid_score float8,
    test_score  float8,
    valid_auc   float8,                 -- binary only (NULL otherwise)
    test_auc    float8,
    refit_of    bigint REFERENCES trails.models ON DELETE SET NULL,  -- trails.refit's source model
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.models', '');
SELECT pg_catalog.pg_extension_config_dump('trails.models_model_id_seq', '');  -- pg_dump keeps where ids go on

-- One row per deployment (trails.deploy): which model of a dataset is the one in use — the
-- dataset's newest row. Rows are appended, never changed (trails.deployments module docstring).
CREATE TABLE trails.deployments (
    deployment_id     bigserial PRIMARY KEY,
    dataset           text NOT NULL,
    model_id          bigint NOT NULL REFERENCES trails.models,
    strategy          text NOT NULL,    -- model | best_score | most_recent | rollback | if_better | always
    metric            text NOT NULL,    -- the model's, with its scores when deployed
    valid_score       float8,
    test_score        float8,
    previous_model_id bigint,           -- the model deployed before (NULL: none)
    deployed_by       name NOT NULL DEFAULT current_user,
    deployed_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON trails.deployments (dataset, deployment_id DESC);
SELECT pg_catalog.pg_extension_config_dump('trails.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('trails.deployments_deployment_id_seq', '');  -- pg_dump keeps where ids go on

-- TFMEM scores of archs, kept for warm starts (trails.selection.score_cache): one row per
-- scoring signature (TFMEM, seed, space, the MLP's input and output widths and, for a
-- data-dependent TFMEM, its batch of rows); archs and scores are parallel arrays.
CREATE TABLE trails.tfmem_scores (
    signature  text PRIMARY KEY,
    tfmem      text NOT NULL,
    seed       int NOT NULL,
    archs      text[] NOT NULL,         -- '64-128-64'
    scores     float8[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.tfmem_scores', '');

-- sql/02_errors.sql
-- trails: errors as SQL users expect them.
--
-- Each SQL entry point is a PL/pgSQL wrapper around a PL/Python function (trails.py_*). PL/Python
-- puts a Python traceback into the CONTEXT of every ERROR it raises; the wrapper catches the
-- ERROR and raises it again with the same SQLSTATE, message, DETAIL and HINT, so the user sees
-- those and a one-line CONTEXT instead of the traceback. WHEN OTHERS does not catch a cancel
-- (query_canceled, what pg_cancel_backend and statement_timeout raise): it stops the call as
-- before. A wrapper's body ends in the line "-- @reraise", which make replaces with the
-- handler in sql/reraise.plpgsql when it builds the extension script.
--
-- A function called once per row (trails.predict and its kin) cannot afford that: an
-- EXCEPTION block starts a subtransaction on every call. Its PL/Python function returns a
-- failure instead of raising it — the last column of its result, JSON {message, detail, hint,
-- sqlstate} (trails.sql_api.reported_failure) — and trails.checked (30_model_selection.sql),
-- plain plpgsql, raises it.

-- sql/10_data.sql
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- What the backend's Python sees: versions and paths.
CREATE FUNCTION trails.environment()
RETURNS TABLE(key text, value text)
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import environment; return environment(plpy)$$;

-- sql/20_filtering.sql
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
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
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- sql/30_model_selection.sql
-- trails: the product — select, store and use a model within a time budget.
-- (Each entry point: a PL/pgSQL wrapper around trails.py_*, without traceback: see 02_errors.sql.)

-- Select a model for the dataset within budget_s seconds (or, with budget_s NULL, by refining
-- exactly max_trials candidates); store it; return one row. task: auto | binary | multiclass |
-- regression; metric: NULL (the task's default) or one of the task's (README "Tasks");
-- max_params bounds the MLP's parameters (trees: the nodes of one boosting round). seed fixes
-- every random choice. families: auto (MLPs and gradient-boosted trees in one race), mlp, gbdt.
-- deploy: if_better (the new model becomes the dataset's deployed one when it beats the deployed
-- model on the current test rows, or none is deployed), always, never; the row says (deployed).
-- warm_start: when a model of this dataset and label exists (the deployed one, else the newest),
-- reuse cached TFMEM scores, extend that model's layout (new values get new ids; old ids keep
-- their meaning) and resume its candidate from its weights beside fresh ones; NOTICEs say what
-- was reused, or why the call started cold.
-- (A composite type, not RETURNS TABLE: its task and metric columns share the arguments' names.)
CREATE TYPE trails.selection_result AS (
    run_id bigint, best_arch text, valid_auc float8, test_auc float8, n_scored int, k_refined int,
    u int, elapsed_s float8, model_id bigint, task text, metric text, valid_score float8,
    test_score float8, params bigint, family text, family_scores jsonb, deployed boolean);

CREATE FUNCTION trails.py_model_selection(dataset text, budget_s float8, label text, tfmem text,
                                          refinement text, seed int, task text, metric text,
                                          max_params bigint, max_trials int, families text, deploy text,
                                          warm_start boolean)
RETURNS SETOF trails.selection_result
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import model_selection; return model_selection(plpy, dataset, budget_s, label, tfmem, refinement, seed, task, metric, max_params, max_trials, families, deploy, warm_start)$$;

CREATE FUNCTION model_selection(dataset text, budget_s float8, label text DEFAULT 'label',
                                tfmem text DEFAULT 'express_flow', refinement text DEFAULT 'auto',
                                seed int DEFAULT 0, task text DEFAULT 'auto',
                                metric text DEFAULT NULL, max_params bigint DEFAULT NULL,
                                max_trials int DEFAULT NULL, families text DEFAULT 'auto',
                                deploy text DEFAULT 'if_better', warm_start boolean DEFAULT true)
RETURNS SETOF trails.selection_result
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_model_selection($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- What model_selection would do with this budget (t1, t2 and the per-arch cost model measured
-- now), without doing it: phases in seconds, the cost cap on candidates, the cost model as jsonb.
CREATE FUNCTION trails.py_model_selection_plan(dataset text, budget_s float8, label text, tfmem text,
                                               task text)
RETURNS TABLE(t1 float8, t2 float8, n int, k int, u int, rungs text, profile_s float8,
              load_s float8, filtering_s float8, refinement_s float8, finish_s float8,
              test_and_store_s float8, total_s float8, rungs_json jsonb, epoch_cap_s float8,
              cost_model jsonb)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import model_selection_plan; return model_selection_plan(plpy, dataset, budget_s, label, tfmem, task)$$;

CREATE FUNCTION model_selection_plan(dataset text, budget_s float8, label text DEFAULT 'label',
                                     tfmem text DEFAULT 'express_flow', task text DEFAULT 'auto')
RETURNS TABLE(t1 float8, t2 float8, n int, k int, u int, rungs text, profile_s float8,
              load_s float8, filtering_s float8, refinement_s float8, finish_s float8,
              test_and_store_s float8, total_s float8, rungs_json jsonb, epoch_cap_s float8,
              cost_model jsonb)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_model_selection_plan($1, $2, $3, $4, $5);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- One row under a stored model. PL/Python cannot take a polymorphic row, so the row travels
-- as json (to_json: PostgreSQL's own rendering of each column, as to_jsonb renders it, and
-- cheaper to hand to Python than jsonb). output: score (binary: P(positive);
-- regression: the value), label (the most probable class), proba (class → probability); the
-- result holds that one, or the failure (see 02_errors.sql: no subtransaction a row).
CREATE TYPE trails.row_prediction AS (score float8, label text, proba jsonb, failure jsonb);

CREATE FUNCTION trails.py_predict_row(model_id bigint, row_value json, output text)
RETURNS trails.row_prediction
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import predict_row; return predict_row(plpy, model_id, row_value, output)$$;

-- The prediction, or its failure raised with its DETAIL and HINT (called once a row: plain
-- plpgsql, no EXCEPTION block; see 02_errors.sql).
CREATE FUNCTION trails.checked(prediction trails.row_prediction)
RETURNS trails.row_prediction
LANGUAGE plpgsql IMMUTABLE
AS $$BEGIN
    IF prediction.failure IS NULL THEN
        RETURN prediction;
    ELSIF prediction.failure->>'detail' IS NOT NULL AND prediction.failure->>'hint' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = prediction.failure->>'sqlstate', MESSAGE = prediction.failure->>'message',
            DETAIL = prediction.failure->>'detail', HINT = prediction.failure->>'hint';
    ELSIF prediction.failure->>'detail' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = prediction.failure->>'sqlstate', MESSAGE = prediction.failure->>'message',
            DETAIL = prediction.failure->>'detail';
    ELSIF prediction.failure->>'hint' IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = prediction.failure->>'sqlstate', MESSAGE = prediction.failure->>'message',
            HINT = prediction.failure->>'hint';
    END IF;
    RAISE EXCEPTION USING ERRCODE = prediction.failure->>'sqlstate', MESSAGE = prediction.failure->>'message';
END$$;

-- Binary: P(positive class); regression: the predicted value (multiclass: an ERROR naming
-- predict_label and predict_proba). E.g. SELECT trails.predict(1, t) FROM frappe_test t.
CREATE FUNCTION trails.predict(model_id bigint, row_value anyelement)
RETURNS float8
LANGUAGE sql STABLE
AS $$SELECT (trails.checked(trails.py_predict_row(model_id, to_json(row_value), 'score'))).score$$;

CREATE FUNCTION trails.predict_jsonb(model_id bigint, row_value jsonb)
RETURNS float8
LANGUAGE sql STABLE
AS $$SELECT (trails.checked(trails.py_predict_row(model_id, row_value::json, 'score'))).score$$;

-- A classifier's most probable class for one row, as text.
CREATE FUNCTION trails.predict_label(model_id bigint, row_value anyelement)
RETURNS text
LANGUAGE sql STABLE
AS $$SELECT (trails.checked(trails.py_predict_row(model_id, to_json(row_value), 'label'))).label$$;

-- A classifier's probability of each class for one row: {"class": p, ...}.
CREATE FUNCTION trails.predict_proba(model_id bigint, row_value anyelement)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$SELECT (trails.checked(trails.py_predict_row(model_id, to_json(row_value), 'proba'))).proba$$;

-- Every row of a table (id: its "id" column, else the row number): score (binary P(positive),
-- regression value; NULL for multiclass), label (classifiers; NULL for regression) and, with
-- with_proba => true, proba (class → probability; else NULL). The rows travel out of PL/Python as
-- one row of arrays per chunk of rows, unnested here.
CREATE FUNCTION trails.py_predict_table(model_id bigint, tbl regclass, with_proba boolean)
RETURNS TABLE(ids bigint[], scores float8[], labels text[], probas jsonb[])
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import predict_table; return predict_table(plpy, model_id, tbl, with_proba)$$;

CREATE FUNCTION trails.predict_table(model_id bigint, tbl regclass, with_proba boolean DEFAULT false)
RETURNS TABLE(id bigint, score float8, label text, proba jsonb)
LANGUAGE plpgsql STABLE
AS $$BEGIN
    RETURN QUERY SELECT u.* FROM trails.py_predict_table($1, $2, $3) p,
        unnest(p.ids, p.scores, p.labels, p.probas) AS u;
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- A stored model as a graph (ids int64 [B, F], values float32 [B, F]) → the task's output:
-- format 'onnx' or 'torch_export' (a torch.export program). trails.model_layout says how to encode rows for it.
CREATE FUNCTION trails.py_export_model(model_id bigint, format text)
RETURNS bytea
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import export_model; return export_model(plpy, model_id, format)$$;

CREATE FUNCTION trails.export_model(model_id bigint, format text DEFAULT 'onnx')
RETURNS bytea
LANGUAGE plpgsql STABLE
AS $$BEGIN
    RETURN trails.py_export_model($1, $2);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- Fields, dictionaries, missing/unknown ids, scaling and task of a stored model, as jsonb.
CREATE FUNCTION trails.py_model_layout(model_id bigint)
RETURNS jsonb
LANGUAGE plpython3u STABLE
AS $$from trails.sql_api import model_layout; return model_layout(plpy, model_id)$$;

CREATE FUNCTION trails.model_layout(model_id bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
AS $$BEGIN
    RETURN trails.py_model_layout($1);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- Retrain a stored model's arch on train + valid for its epochs (test untouched) within
-- budget_s seconds; store it as a new model (refit_of = the source) and return it.
CREATE FUNCTION trails.py_refit(model_id bigint, budget_s float8)
RETURNS TABLE(new_model_id bigint, epochs int, train_rows bigint, metric text, test_score float8,
              elapsed_s float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import refit; return refit(plpy, model_id, budget_s)$$;

CREATE FUNCTION trails.refit(model_id bigint, budget_s float8)
RETURNS TABLE(new_model_id bigint, epochs int, train_rows bigint, metric text, test_score float8,
              elapsed_s float8)
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_refit($1, $2);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- The refinement service's jobs, to watch a run from a second session.
CREATE FUNCTION trails.jobs()
RETURNS TABLE(job_id text, status text, progress float8, message text, dataset text, k int,
              elapsed_s float8, winner text, metric text, valid_score float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import jobs; return jobs(plpy)$$;

-- sql/35_deployments.sql
-- trails: deployments — which stored model of a dataset is the one in use
-- (python/trails/deployments.py says how each strategy chooses).

CREATE FUNCTION trails.py_deploy(dataset text, model_id bigint, strategy text)
RETURNS SETOF trails.deployments
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import deploy; return deploy(plpy, dataset, model_id, strategy)$$;

-- trails.deploy('frappe', 12): that model; trails.deploy('frappe', strategy => 'best_score' |
-- 'most_recent' | 'rollback'): the one the strategy picks. Returns the new deployment row.
CREATE FUNCTION trails.deploy(dataset text, model_id bigint DEFAULT NULL, strategy text DEFAULT NULL)
RETURNS SETOF trails.deployments
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_deploy($1, $2, $3);
EXCEPTION WHEN OTHERS THEN  -- the ERROR again, without PL/Python's traceback (see 02_errors.sql)
    DECLARE e_detail text; e_hint text;
    BEGIN
        GET STACKED DIAGNOSTICS e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
        END IF;
    END;
END$$;

-- The model deployed for a dataset (an ERROR whose HINT says how to deploy when none is).
CREATE FUNCTION trails.deployed_model(dataset text)
RETURNS bigint
LANGUAGE plpgsql STABLE
AS $$DECLARE
    deployed bigint;
BEGIN
    IF $1 IS NULL THEN  -- also what an untyped NULL model_id resolves to: text is preferred
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'trails: model_id or dataset must not be NULL',
            HINT = 'pass a model_id, or a dataset with a deployed model: SELECT model_id, dataset FROM trails.models';
    END IF;
    SELECT d.model_id INTO deployed FROM trails.deployments d WHERE d.dataset = $1
    ORDER BY d.deployment_id DESC LIMIT 1;
    IF deployed IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('trails: no model of %s is deployed', $1),
            HINT = format('deploy one: SELECT * FROM trails.deploy(%L, strategy => ''best_score''), or '
                          'trails.deploy(%L, <model_id>)', $1, $1);
    END IF;
    RETURN deployed;
END$$;

-- The deployed model's predictions, by dataset: trails.predict('frappe', t). (The deployment is
-- looked up on every row; SELECT trails.predict(m, t) FROM trails.deployed_model('frappe') m,
-- frappe_test t looks it up once.)
CREATE FUNCTION trails.predict(dataset text, row_value anyelement)
RETURNS float8
LANGUAGE sql STABLE
AS $$SELECT trails.predict(trails.deployed_model(dataset), row_value)$$;

CREATE FUNCTION trails.predict_label(dataset text, row_value anyelement)
RETURNS text
LANGUAGE sql STABLE
AS $$SELECT trails.predict_label(trails.deployed_model(dataset), row_value)$$;

CREATE FUNCTION trails.predict_proba(dataset text, row_value anyelement)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$SELECT trails.predict_proba(trails.deployed_model(dataset), row_value)$$;

CREATE FUNCTION trails.predict_table(dataset text, tbl regclass, with_proba boolean DEFAULT false)
RETURNS TABLE(id bigint, score float8, label text, proba jsonb)
LANGUAGE sql STABLE
AS $$SELECT * FROM trails.predict_table(trails.deployed_model(dataset), tbl, with_proba)$$;
