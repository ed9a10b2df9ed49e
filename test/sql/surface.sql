-- surface: the extension as a user installs it, and everything it puts into the database.
\set SHOW_CONTEXT never

CREATE EXTENSION trails CASCADE;

-- the extension itself
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname IN ('trails', 'plpython3u')
ORDER BY 1;

-- every object the extension owns
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'trails')
  AND d.deptype = 'e'
ORDER BY 1;

-- every function: schema, name, arguments with their defaults, result, language, volatility
-- (i immutable, s stable, v volatile) and strictness
\x on
SELECT n.nspname AS schema, p.proname AS function,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result,
       l.lanname AS language, p.provolatile AS volatility, p.proisstrict AS strict
FROM pg_depend d
JOIN pg_proc p ON p.oid = d.objid
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE d.classid = 'pg_proc'::regclass
  AND d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'trails')
  AND d.deptype = 'e'
ORDER BY n.nspname, p.proname, pg_get_function_identity_arguments(p.oid);
\x off

-- the tables of schema trails and their columns
SELECT c.relname AS "table", a.attnum AS "#", a.attname AS "column",
       format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       pg_get_expr(ad.adbin, ad.adrelid) AS "default"
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE n.nspname = 'trails' AND c.relkind = 'r'
ORDER BY c.relname, a.attnum;

-- their constraints
SELECT conrelid::regclass AS "table", conname, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE connamespace = 'trails'::regnamespace
ORDER BY 1, 2;

-- the tables pg_dump keeps the rows of (pg_extension_config_dump)
SELECT unnest(extconfig)::regclass AS config_table
FROM pg_extension WHERE extname = 'trails' ORDER BY 1;

-- all three are empty in a new database
SELECT (SELECT count(*) FROM trails.layouts) AS layouts,
       (SELECT count(*) FROM trails.runs) AS runs,
       (SELECT count(*) FROM trails.models) AS models;

-- the backend's Python sees the trails package that this extension version belongs to
-- (values are versions and paths of this machine: only the keys are shown)
SELECT key FROM trails.environment();
SELECT value = (SELECT extversion FROM pg_extension WHERE extname = 'trails') AS same_version
FROM trails.environment() WHERE key = 'trails';
