-- trails 0.3.0 → 0.4.0: predict at table speed. Per-row predict reports its failure as a value
-- that trails.checked raises (no subtransaction a row), and predict_table returns its
-- rows from arrays, with proba only when asked (with_proba => true). make appends every function
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
