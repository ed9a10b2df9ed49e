-- trails 0.1.0 → 0.2.0: tasks (binary, multiclass, regression), metrics, parameter counts,
-- refit, and PL/pgSQL entry points without tracebacks. make appends every function of
-- sql/02..39_*.sql to this file to build extension/trails--0.1.0--0.2.0.sql.

-- runs and models: the task and metric that selected them (0.1.0 selected binary, by ROC-AUC)
ALTER TABLE trails.runs ALTER COLUMN budget_s DROP NOT NULL,
    ADD COLUMN task text NOT NULL DEFAULT 'binary', ADD COLUMN metric text NOT NULL DEFAULT 'roc_auc',
    ADD COLUMN valid_score float8, ADD COLUMN test_score float8;
UPDATE trails.runs SET valid_score = valid_auc, test_score = test_auc;
ALTER TABLE trails.runs ALTER COLUMN task DROP DEFAULT, ALTER COLUMN metric DROP DEFAULT;

ALTER TABLE trails.models
    ADD COLUMN task text NOT NULL DEFAULT 'binary', ADD COLUMN metric text NOT NULL DEFAULT 'roc_auc',
    ADD COLUMN params bigint, ADD COLUMN valid_score float8, ADD COLUMN test_score float8,
    ADD COLUMN refit_of bigint REFERENCES trails.models ON DELETE SET NULL;
-- parameters of each stored MLP (as trails.model.mlp_parameters counts them): per hidden layer
-- fan_in × width + width (+ 2 × width with BatchNorm), then the 2-logit output layer
UPDATE trails.models m SET valid_score = valid_auc, test_score = test_auc, params = (
    SELECT sum(CASE WHEN i = 1 THEN (m.hyper->>'n_fields')::bigint * (m.hyper->>'embedding_dim')::bigint
                    ELSE h[i - 1] END * h[i] + h[i]
               + CASE WHEN coalesce((m.hyper->>'batch_norm')::boolean, true) THEN 2 * h[i] ELSE 0 END
               + CASE WHEN i = array_length(h, 1) THEN 2 * h[i] + 2 ELSE 0 END)
    FROM (SELECT string_to_array(m.arch, '-')::bigint[] AS h) a, generate_subscripts(a.h, 1) AS i);
ALTER TABLE trails.models ALTER COLUMN task DROP DEFAULT, ALTER COLUMN metric DROP DEFAULT,
    ALTER COLUMN params SET NOT NULL;
UPDATE trails.models SET hyper = hyper || '{"n_outputs": 2}' WHERE NOT hyper ? 'n_outputs';

-- layouts: a task instead of a positive class; no unique key (concurrent first calls on a new
-- table store identical rows instead of waiting on each other). A 0.1.0 layout of a label that
-- was not 0/1 (one value against the rest) keeps predicting its stored models.
UPDATE trails.layouts SET layout = (layout - 'positive') || jsonb_build_object('task', jsonb_build_object(
    'kind', 'binary', 'mean', 0, 'std', 1, 'metric', 'roc_auc', 'classes',
    CASE layout->>'positive' WHEN '1' THEN '["0", "1"]'::jsonb WHEN 'true' THEN '["false", "true"]'::jsonb
         ELSE jsonb_build_array('not ' || (layout->>'positive'), layout->>'positive') END))
WHERE layout ? 'positive';
ALTER TABLE trails.layouts DROP CONSTRAINT layouts_train_table_label_train_rows_settings_key;
CREATE INDEX ON trails.layouts (train_table, label, train_rows, settings);

-- 0.1.0's functions: replaced below (new arguments, PL/pgSQL wrappers around trails.py_*)
DROP FUNCTION model_selection(text, float8, text, text, text, int);
DROP FUNCTION model_selection_plan(text, float8, text, text);
DROP FUNCTION trails.predict(bigint, anyelement);
DROP FUNCTION trails.predict_jsonb(bigint, jsonb);
DROP FUNCTION trails.predict_table(bigint, regclass);
DROP FUNCTION trails.jobs();
DROP FUNCTION trails.describe(text, text);
DROP FUNCTION trails.read_batch(text, int, text, text);
DROP FUNCTION trails.read_batch_stats(text, int, text, text);
DROP FUNCTION trails.environment();
DROP FUNCTION filtering_phase(text, int, int, text, text, text, int);
DROP FUNCTION coordinator(float8, float8, float8);
DROP FUNCTION profiling_filtering_phase(text, text, text);
DROP FUNCTION benchmark_filtering_latency_in_db(int, text, int, text, text);
