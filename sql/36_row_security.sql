-- trails: a role sees the layouts, runs, models and deployments of the tables it may read, and
-- no others (row-level security; the extension's owner and superusers see every row). A layout
-- is readable when its train table is; a run or model when its layout is; a deployment when its
-- model is. What a role may write is bounded the same way (the policies' USING is also their
-- WITH CHECK). Anything that reads these tables as the role — predict, deploy, export, refit,
-- warm starts, trails.deployments itself — therefore finds only those rows.
--
-- An upgrade step that drops this version's functions must drop these policies first: they
-- depend on trails.may_read.

-- Whether the current role may SELECT from the table named tbl (as trails.layouts.train_table
-- holds it: the name the caller gave, resolved in the caller's search_path). False, never an
-- ERROR, for a table that is gone or in a schema the role may not use.
CREATE FUNCTION trails.may_read(tbl text)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(CASE
        WHEN array_length(parts, 1) = 1 THEN has_table_privilege(to_regclass(tbl), 'SELECT')
        ELSE (SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = parts[array_length(parts, 1) - 1] AND c.relname = parts[array_length(parts, 1)])
        END, false)
    FROM (SELECT parse_ident(tbl) AS parts) AS name
$$;

ALTER TABLE trails.layouts ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_train_table ON trails.layouts USING (trails.may_read(train_table));

ALTER TABLE trails.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_layout ON trails.runs
    USING (EXISTS (SELECT 1 FROM trails.layouts l WHERE l.layout_id = runs.layout_id));

ALTER TABLE trails.models ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_layout ON trails.models
    USING (EXISTS (SELECT 1 FROM trails.layouts l WHERE l.layout_id = models.layout_id));

ALTER TABLE trails.deployments ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_model ON trails.deployments
    USING (EXISTS (SELECT 1 FROM trails.models m WHERE m.model_id = deployments.model_id));
