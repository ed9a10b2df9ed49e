-- trails 0.5.0 → 0.6.0: a role sees the layouts, runs, models and deployments of the tables it
-- may read and no others (row-level security: sql/36_row_security.sql, appended below with every
-- function of this version). make appends every function of sql/02..39_*.sql to this file to
-- build extension/trails--0.5.0--0.6.0.sql. Runs, models, layouts and deployments are kept as
-- they are.

-- 0.5.0's functions and types: replaced below by this version's
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
