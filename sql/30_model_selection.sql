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
