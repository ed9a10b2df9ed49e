-- trails 0.3.0 → 0.4.0: predict at table speed. Per-row predict reports its failure as a value
-- that trails.checked raises (no subtransaction a row), and predict_table returns its
-- rows from arrays, with proba only when asked (with_proba => true); trails.deployments and
-- trails.deploy say which model of a dataset is in use. make appends every function
-- of sql/02..39_*.sql to this file to build extension/trails--0.3.0--0.4.0.sql. Runs, models
-- and layouts are kept as they are.

-- 0.3.0's functions and types: replaced below by this version's
DO $$
DECLARE
    member record;
BEGIN
    FOR member IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
        WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
          AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'trails') AND d.deptype = 'e'
    LOOP
        EXECUTE 'DROP FUNCTION ' || member.signature::text;
    END LOOP;
END
$$;
DROP TYPE trails.selection_result;

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
SELECT pg_catalog.pg_extension_config_dump('trails.deployments_deployment_id_seq', '');
-- the id sequences are dumped with their tables (before 0.4.0 a restore started them at 1 again)
SELECT pg_catalog.pg_extension_config_dump('trails.layouts_layout_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('trails.runs_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('trails.models_model_id_seq', '');
