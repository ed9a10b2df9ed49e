-- trails 0.4.0 → 0.5.0: re-selection when the table grows. model_selection(..., warm_start)
-- reuses TFMEM scores (trails.tfmem_scores), extends the previous model's layout instead of
-- renumbering it (trails.layouts.extends_layout) and resumes the deployed model's candidate from
-- its weights; trails.runs.warm_start says what was reused. make appends every function of
-- sql/02..39_*.sql to this file to build extension/trails--0.4.0--0.5.0.sql. Runs, models,
-- layouts and deployments are kept as they are.

-- 0.4.0's functions and types: replaced below by this version's
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
DROP TYPE trails.row_prediction;

ALTER TABLE trails.layouts ADD COLUMN extends_layout bigint REFERENCES trails.layouts;
ALTER TABLE trails.runs ADD COLUMN warm_start jsonb;

CREATE TABLE trails.tfmem_scores (
    signature  text PRIMARY KEY,
    tfmem      text NOT NULL,
    seed       int NOT NULL,
    archs      text[] NOT NULL,
    scores     float8[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.tfmem_scores', '');
