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
                                          warm_start boolean, numeric_encoding text)
RETURNS SETOF trails.selection_result
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import model_selection; return model_selection(plpy, dataset, budget_s, label, tfmem, refinement, seed, task, metric, max_params, max_trials, families, deploy, warm_start, numeric_encoding)$$;

CREATE FUNCTION model_selection(dataset text, budget_s float8, label text DEFAULT 'label',
                                tfmem text DEFAULT 'express_flow', refinement text DEFAULT 'auto',
                                seed int DEFAULT 0, task text DEFAULT 'auto',
                                metric text DEFAULT NULL, max_params bigint DEFAULT NULL,
                                max_trials int DEFAULT NULL, families text DEFAULT 'auto',
                                deploy text DEFAULT 'if_better', warm_start boolean DEFAULT true,
                                numeric_encoding text DEFAULT 'auto')
RETURNS SETOF trails.selection_result
LANGUAGE plpgsql VOLATILE
AS $$BEGIN
    RETURN QUERY SELECT * FROM trails.py_model_selection($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14);
-- @reraise
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
-- @reraise
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
-- @reraise
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
-- @reraise
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
-- @reraise
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
-- @reraise
END$$;

-- The refinement service's jobs, to watch a run from a second session.
CREATE FUNCTION trails.jobs()
RETURNS TABLE(job_id text, status text, progress float8, message text, dataset text, k int,
              elapsed_s float8, winner text, metric text, valid_score float8)
LANGUAGE plpython3u VOLATILE
AS $$from trails.sql_api import jobs; return jobs(plpy)$$;
