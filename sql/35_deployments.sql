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
-- @reraise
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
