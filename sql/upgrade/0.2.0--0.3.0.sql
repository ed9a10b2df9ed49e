-- trails 0.2.0 → 0.3.0: gradient-boosted trees race beside the MLPs (model_selection's
-- families argument); a run records its families, the winner's family and each family's best
-- valid score. make appends every function of sql/02..39_*.sql to this file to build
-- extension/trails--0.2.0--0.3.0.sql. Runs and models are kept (every 0.2.0 model is an MLP).

ALTER TABLE trails.runs ADD COLUMN families text NOT NULL DEFAULT 'mlp',
    ADD COLUMN family text NOT NULL DEFAULT 'mlp', ADD COLUMN family_scores jsonb;
UPDATE trails.runs SET family_scores = jsonb_build_object('mlp', valid_score) WHERE valid_score IS NOT NULL;

-- 0.2.0's functions and result type: replaced below by this version's
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
