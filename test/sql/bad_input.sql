-- bad_input: every argument error of every SQL entry point, as the user sees it (with DETAIL
-- and HINT). None of these calls trains a model.
\set SHOW_CONTEXT never

--
-- the dataset argument (every entry point resolves it the same way; describe shows it)
--
SELECT * FROM trails.describe('nosuch');
SELECT * FROM trails.describe(NULL);
SELECT * FROM trails.describe('');
SELECT * FROM trails.describe('   ');
-- names are identifiers, not SQL: another case is not found; a schema-qualified name is
-- looked up in that schema only
SELECT * FROM trails.describe('SHOP');
SELECT * FROM trails.describe('public.nosuch');
SELECT * FROM trails.describe('nosuch_schema.shop');
-- a sequence is not a table
CREATE SEQUENCE a_sequence;
SELECT * FROM trails.describe('a_sequence');
-- a family needs all three tables (_test is missing here)
CREATE TABLE half_train (x int, label int);
CREATE TABLE half_valid (x int, label int);
SELECT * FROM trails.describe('half');

--
-- the label argument and the table's contents
--
SELECT * FROM trails.describe('shop', 'target');
SELECT * FROM trails.describe('shop', NULL);
SELECT * FROM trails.describe('shop', '');
-- no column besides the label
CREATE TABLE only_label (label int);
INSERT INTO only_label VALUES (0), (1);
SELECT * FROM trails.describe('only_label');
-- no rows at all, or no row with a label
CREATE TABLE no_rows (x int, label int);
SELECT * FROM trails.describe('no_rows');
CREATE TABLE null_labels (x int, label int);
INSERT INTO null_labels SELECT i, NULL FROM generate_series(1, 10) AS i;
SELECT * FROM trails.describe('null_labels');
-- every column is a key (all values distinct): nothing to learn from
CREATE TABLE keys_only (id int, code text, label int);
INSERT INTO keys_only SELECT i, 'c' || i, i % 2 FROM generate_series(1, 50) AS i;
SELECT * FROM trails.describe('keys_only');
-- a label with too many values to be a class: an integer one is a regression target (task
-- 'auto'), a text one is ambiguous
-- labels are checked before any scoring (task => 'auto' unless said otherwise):
CREATE TABLE labels (id int, k text, x int, copy text, y text, n numeric, t text, rare text, nulls int);
INSERT INTO labels SELECT i, 'key' || i, i % 5, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,
       CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END, i / 7.0, 'v' || (i % 400),
       CASE WHEN i <= 3 THEN 'rare' WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END,
       CASE WHEN i % 10 = 0 THEN NULL ELSE i % 2 END
FROM generate_series(1, 600) AS i;
-- a feature column that is a copy of the label
SELECT * FROM trails.describe('labels', 'y');
-- a text label with many values: which task?
SELECT * FROM trails.describe('labels', 't');
-- a key as the label of a classifier
SELECT * FROM trails.describe('labels', 'k', 'multiclass');
-- a task the label cannot be
SELECT * FROM trails.describe('labels', 'rare', 'regression');
SELECT * FROM trails.describe('labels', 'rare', 'binary');
SELECT * FROM trails.describe('labels', 'rare', 'classification');
-- a class too rare to learn is left out, NULL labels are left out: each said in a NOTICE
SELECT name, kind, note FROM trails.describe('labels', 'rare') WHERE kind LIKE 'label%';
SELECT name, kind, note FROM trails.describe('labels', 'nulls') WHERE kind LIKE 'label%';
-- a numeric label is a regression target
SELECT name, kind, note FROM trails.describe('labels', 'n') WHERE kind LIKE 'label%';
SELECT (SELECT count(*) FROM trails.runs) AS runs, (SELECT count(*) FROM trails.models) AS models;

--
-- deployments: nothing deployed, nothing to deploy, bad strategies
--
SELECT trails.predict('shop', s) FROM shop AS s LIMIT 1;
SELECT * FROM trails.predict_table('shop', 'shop');
SELECT * FROM trails.deploy('shop');
SELECT * FROM trails.deploy('shop', 999);
SELECT * FROM trails.deploy('shop', strategy => 'rollback');
SELECT * FROM trails.deploy('shop', strategy => 'sideways');
SELECT * FROM trails.deploy(NULL, 1);
SELECT * FROM model_selection('shop', 30, deploy => 'sometimes');
SELECT * FROM model_selection('shop', 30, warm_start => NULL);
SELECT * FROM model_selection('shop', 30, numeric_encoding => 'quantile');
SELECT count(*) AS deployments FROM trails.deployments;
CREATE TABLE many_labels (x int, label int);
INSERT INTO many_labels SELECT i % 3, i FROM generate_series(1, 2000) AS i;
SELECT * FROM trails.describe('many_labels');
-- a label with a single class is accepted (no error, no notice)
CREATE TABLE one_class (x int, label int);
INSERT INTO one_class SELECT i % 3, 1 FROM generate_series(1, 20) AS i;
SELECT * FROM trails.describe('one_class');
-- a NaN in a float column of the train split: encoded as missing, like NULL
CREATE TABLE nan_train (x float8, label int);
CREATE TABLE nan_valid (LIKE nan_train);
CREATE TABLE nan_test (LIKE nan_train);
INSERT INTO nan_train SELECT CASE WHEN i = 5 THEN 'NaN'::float8 ELSE i END, i % 2 FROM generate_series(1, 40) AS i;
SELECT * FROM trails.describe('nan');

--
-- trails.read_batch, trails.read_batch_stats
--
SELECT * FROM trails.read_batch('shop', 0);
SELECT * FROM trails.read_batch('shop', -3);
SELECT * FROM trails.read_batch('shop', NULL);
SELECT * FROM trails.read_batch('shop', 2, 'training');
SELECT * FROM trails.read_batch('shop', 2, NULL);
SELECT * FROM trails.read_batch('nosuch', 2);
SELECT * FROM trails.read_batch('shop', 2, label => 'target');
SELECT rows FROM trails.read_batch_stats('shop', 0);
SELECT rows FROM trails.read_batch_stats('shop', -1);
SELECT rows FROM trails.read_batch_stats('shop', NULL, 'validation');
SELECT rows FROM trails.read_batch_stats('nosuch');

--
-- filtering_phase(dataset, n, k, tfmem, strategy, label, seed)
--
SELECT * FROM filtering_phase('shop', 10, 3, seed => -1);
SELECT * FROM filtering_phase('shop', 10, 3, seed => NULL);
SELECT * FROM filtering_phase('shop', 0, 3);
SELECT * FROM filtering_phase('shop', -5, 3);
SELECT * FROM filtering_phase('shop', NULL, 3);
SELECT * FROM filtering_phase('shop', 10, 0);
SELECT * FROM filtering_phase('shop', 10, -1);
SELECT * FROM filtering_phase('shop', 10, 11);
SELECT * FROM filtering_phase('shop', 10, 3, 'expressflow');
SELECT * FROM filtering_phase('shop', 10, 3, NULL);
SELECT * FROM filtering_phase('shop', 10, 3, 'express_flow', 'greedy');
SELECT * FROM filtering_phase('shop', 10, 3, 'express_flow', NULL);
SELECT * FROM filtering_phase('shop', 10, 3, label => 'target');
SELECT * FROM filtering_phase('shop', 10, 3, label => NULL);
SELECT * FROM filtering_phase('nosuch', 10, 3);
SELECT * FROM filtering_phase(NULL, 10, 3);
-- k NULL is not an error: all n archs come back
SET client_min_messages = warning;
SELECT count(*) FROM filtering_phase('shop', 10, NULL);
RESET client_min_messages;

--
-- profiling_filtering_phase(dataset, tfmem, label)
--
SELECT profiling_filtering_phase('shop', 'nope');
SELECT profiling_filtering_phase('shop', NULL);
SELECT profiling_filtering_phase('nosuch');
SELECT profiling_filtering_phase('shop', label => 'target');

--
-- benchmark_filtering_latency_in_db(n, dataset, batch_size, tfmem, label)
--
SELECT * FROM benchmark_filtering_latency_in_db(0, 'shop');
SELECT * FROM benchmark_filtering_latency_in_db(NULL, 'shop');
SELECT * FROM benchmark_filtering_latency_in_db(10, 'shop', 0);
SELECT * FROM benchmark_filtering_latency_in_db(10, 'shop', NULL);
SELECT * FROM benchmark_filtering_latency_in_db(10, 'shop', 32, 'nope');
SELECT * FROM benchmark_filtering_latency_in_db(10, 'nosuch');
SELECT * FROM benchmark_filtering_latency_in_db(10, 'shop', label => 'target');

--
-- coordinator(budget_s, t1, t2)
--
SELECT * FROM coordinator(0, 0.001, 1);
SELECT * FROM coordinator(-10, 0.001, 1);
SELECT * FROM coordinator(NULL, 0.001, 1);
SELECT * FROM coordinator('NaN', 0.001, 1);
SELECT * FROM coordinator('Infinity', 0.001, 1);
SELECT * FROM coordinator(60, 0, 1);
SELECT * FROM coordinator(60, 'Infinity', 1);
SELECT * FROM coordinator(60, 0.001, NULL);
SELECT * FROM coordinator(60, 0.001, -2);
-- a budget smaller than one arch's scoring time
SELECT * FROM coordinator(0.0005, 0.001, 1);

--
-- model_selection(dataset, budget_s, label, tfmem, refinement, seed): the arguments are
-- checked before any work
--
SELECT * FROM model_selection('shop', 0);
SELECT * FROM model_selection('shop', -1);
SELECT * FROM model_selection('shop', NULL);
SELECT * FROM model_selection('shop', 'NaN');
SELECT * FROM model_selection('shop', 30, tfmem => 'nope');
SELECT * FROM model_selection('shop', 30, tfmem => NULL);
SELECT * FROM model_selection('shop', 30, refinement => 'gpu');
SELECT * FROM model_selection('shop', 30, refinement => NULL);
SELECT * FROM model_selection('shop', 30, label => '');
SELECT * FROM model_selection('shop', 30, label => NULL);
SELECT * FROM model_selection('shop', 30, seed => -1);
SELECT * FROM model_selection('shop', 30, seed => NULL);
SELECT * FROM model_selection('shop', 30, families => 'forest');
SELECT * FROM model_selection('shop', 30, families => NULL);
-- then the dataset, before reading it
SELECT * FROM model_selection('nosuch', 30);
SELECT * FROM model_selection(NULL, 30);
SELECT * FROM model_selection('', 30);
SELECT * FROM model_selection('shop', 30, label => 'target');
SELECT * FROM model_selection('keys_only', 30);
SELECT * FROM model_selection('only_label', 30);
SELECT * FROM model_selection('no_rows', 30);
-- a split without rows
CREATE TABLE empty_test_train (x int, label int);
CREATE TABLE empty_test_valid (x int, label int);
CREATE TABLE empty_test_test (x int, label int);
INSERT INTO empty_test_train SELECT i % 3, i % 2 FROM generate_series(1, 20) AS i;
INSERT INTO empty_test_valid SELECT i % 3, i % 2 FROM generate_series(1, 5) AS i;
SELECT * FROM model_selection('empty_test', 30);
-- These two are raised after reading and profiling (a few seconds), before the filtering and
-- the refinement. The DETAIL and HINT of "too small" carry measured seconds: terse here.
SELECT * FROM model_selection('shop', 'Infinity', refinement => 'backend');
\set VERBOSITY terse
SELECT * FROM model_selection('shop', 0.01, refinement => 'backend');
\set VERBOSITY default
-- none of these calls left a run or a model behind
SELECT (SELECT count(*) FROM trails.runs) AS runs, (SELECT count(*) FROM trails.models) AS models;

--
-- model_selection_plan(dataset, budget_s, label, tfmem)
--
SELECT * FROM model_selection_plan('shop', 0);
SELECT * FROM model_selection_plan('shop', NULL);
SELECT * FROM model_selection_plan('shop', 30, tfmem => 'nope');
SELECT * FROM model_selection_plan('shop', 30, label => 'target');
SELECT * FROM model_selection_plan('shop', 30, label => NULL);
SELECT * FROM model_selection_plan('nosuch', 30);
\set VERBOSITY terse
SELECT * FROM model_selection_plan('shop', 0.01);
\set VERBOSITY default

--
-- trails.predict(model_id, row), trails.predict_table(model_id, table)
--
SELECT trails.predict(999, s) FROM shop AS s LIMIT 1;
SELECT trails.predict(NULL, s) FROM shop AS s LIMIT 1;
-- an unknown model is an error even for a NULL row
SELECT trails.predict(999, NULL::shop) AS prediction;
-- not a row
SELECT trails.predict(999, 42);
SELECT trails.predict(999, s.city) FROM shop AS s LIMIT 1;
SELECT trails.predict(999, ARRAY[1, 2]);
SELECT * FROM trails.predict_table(999, 'shop');
SELECT * FROM trails.predict_table(NULL, 'shop');
SELECT * FROM trails.predict_table(999, NULL);
SELECT * FROM trails.predict_table(999, 'nosuch');

--
-- tasks, metrics and bounds of model_selection (checked before any work)
--
SELECT * FROM model_selection('shop', 30, task => 'classification');
SELECT * FROM model_selection('shop', 30, metric => 'f1');
SELECT * FROM model_selection('shop', 30, task => 'regression', metric => 'accuracy');
SELECT * FROM model_selection('shop', NULL);
SELECT * FROM model_selection('shop', 30, max_params => 0);
SELECT * FROM model_selection('shop', 30, max_trials => 0);
SELECT * FROM model_selection('shop', NULL, max_trials => -1);
-- a metric of another task than the label's
SELECT * FROM model_selection('labels', 30, label => 'n', metric => 'accuracy');
-- no arch is small enough
SELECT * FROM model_selection('labels', 30, label => 'rare', max_params => 10);

--
-- predict_label, predict_proba, export_model, model_layout, refit
--
SELECT trails.predict_label(999, s) FROM shop AS s LIMIT 1;
SELECT trails.predict_proba(NULL, s) FROM shop AS s LIMIT 1;
SELECT trails.export_model(999);
SELECT trails.export_model(999, 'pmml');
SELECT trails.export_model(999, 'torchscript');
SELECT trails.model_layout(999);
SELECT * FROM trails.refit(999, 10);
SELECT * FROM trails.refit(999, 0);
SELECT * FROM trails.refit(999, NULL);
SELECT (SELECT count(*) FROM trails.runs) AS runs, (SELECT count(*) FROM trails.models) AS models;

--
-- what a psql user sees by default: message, DETAIL, HINT and one line of CONTEXT — no
-- Python traceback
--
\set SHOW_CONTEXT errors
SELECT * FROM trails.describe('labels', 'y');
SELECT * FROM model_selection('shop', 30, task => 'classification');
\set SHOW_CONTEXT never
