-- describe: how trails sees a table (its layout), and rows encoded as the models see them.
\set SHOW_CONTEXT never

-- A single table: split 70/20/10 by a hash of each row. Columns: an enum (its dictionary is the
-- type's labels, in declared order, 'black' included though no row has it), a boolean, a text
-- column with 5 values, an integer with 4 values (categorical), a float (numeric), an integer
-- key (skipped), a column that is always NULL (skipped) and the 0/1 label.
CREATE TYPE color AS ENUM ('red', 'green', 'blue', 'black');
CREATE TABLE shop (
    id      int,
    color   color,
    member  boolean,
    city    text,
    level   int,
    amount  float8,
    note    text,
    label   int
);
INSERT INTO shop
SELECT i,
       (ARRAY['red', 'green', 'blue']::color[])[1 + i % 3],
       i % 2 = 0,
       (ARRAY['Oslo', 'Rome', 'Lima', 'Pune', 'Kobe'])[1 + i % 5],
       i % 4,
       (i % 17) * 1.5,
       NULL,
       CASE WHEN i % 3 = 0 OR i % 7 = 0 THEN 1 ELSE 0 END
FROM generate_series(1, 200) AS i;

SELECT * FROM trails.describe('shop');

-- the layout is stored once per (train table, label, train rows, settings)
SELECT layout_id, dataset, train_table, label, train_rows, layout#>>'{task,kind}' AS task, layout#>'{task,classes}' AS classes
FROM trails.layouts ORDER BY layout_id;
-- describing again reuses it
SELECT count(*) AS fields FROM trails.describe('shop') WHERE kind <> 'skipped';
-- a schema-qualified name is the same dataset, with the same stored layout
SELECT count(*) AS fields FROM trails.describe('public.shop') WHERE kind <> 'skipped';
SELECT count(*) AS layouts FROM trails.layouts;

-- rows of each split (the hash split is deterministic: 70/20/10 of the rows, roughly)
SELECT split, s.rows, s.fields, s.n_ids, round(s.positive_rate::numeric, 4) AS positive_rate,
       s.read_s >= 0 AS timed
FROM unnest(ARRAY['train', 'valid', 'test']) AS split,
     LATERAL trails.read_batch_stats('shop', NULL, split) AS s;
SELECT rows FROM trails.read_batch_stats('shop', 10);

-- the first rows of a split, encoded: one id per field (a value id, or the field's missing /
-- unknown id), the value fed with it (1 for a category, the standardised number for a
-- numeric field) and the 0/1 target (values rounded here)
SELECT ids, (SELECT array_agg(round(v::numeric, 4)) FROM unnest(vals) AS v) AS vals, target
FROM trails.read_batch('shop', 5);
SELECT ids, target FROM trails.read_batch('shop', 3, 'test');

-- A text label with five values is a multiclass label (task 'auto'): its classes in value order.
SELECT * FROM trails.describe('shop', label => 'city');
SELECT label, layout#>>'{task,kind}' AS task, layout#>'{task,classes}' AS classes FROM trails.layouts ORDER BY layout_id;
SELECT ids, target FROM trails.read_batch('shop', 4, label => 'city');

-- A family of tables <name>_train / _valid / _test: no hash split; the layout comes from
-- _train only. A smallint with 6 values is categorical, a real is numeric, the bigint key is
-- skipped, the label is a boolean.
CREATE TABLE clicks_train (user_id bigint, device text, hour smallint, score real, clicked boolean);
INSERT INTO clicks_train
SELECT i, (ARRAY['phone', 'tablet', 'desktop'])[1 + i % 3], (i % 6)::smallint, (i % 11) * 0.25,
       i % 4 = 0
FROM generate_series(1, 300) AS i;
-- valid: a device and hours that train never saw (→ unknown ids)
CREATE TABLE clicks_valid (LIKE clicks_train);
INSERT INTO clicks_valid
SELECT i, (ARRAY['phone', 'tablet', 'desktop', 'watch'])[1 + i % 4], (i % 8)::smallint,
       (i % 11) * 0.25, i % 4 = 0
FROM generate_series(301, 360) AS i;
-- test: empty strings and NULL scores (→ missing ids)
CREATE TABLE clicks_test (LIKE clicks_train);
INSERT INTO clicks_test
SELECT i, (ARRAY['phone', 'tablet', 'desktop', ''])[1 + i % 4], (i % 6)::smallint, NULL, i % 4 = 0
FROM generate_series(361, 400) AS i;

SELECT * FROM trails.describe('clicks', label => 'clicked');
SELECT layout_id, dataset, train_table, label, train_rows, layout#>>'{task,kind}' AS task, layout#>'{task,classes}' AS classes
FROM trails.layouts ORDER BY layout_id;
SELECT split, s.rows, s.fields, s.n_ids, round(s.positive_rate::numeric, 4) AS positive_rate
FROM unnest(ARRAY['train', 'valid', 'test']) AS split,
     LATERAL trails.read_batch_stats('clicks', NULL, split, 'clicked') AS s;
SELECT ids, (SELECT array_agg(round(v::numeric, 4)) FROM unnest(vals) AS v) AS vals, target
FROM trails.read_batch('clicks', 4, label => 'clicked');
SELECT ids, (SELECT array_agg(round(v::numeric, 4)) FROM unnest(vals) AS v) AS vals, target
FROM trails.read_batch('clicks', 4, 'valid', 'clicked');
SELECT ids, vals, target FROM trails.read_batch('clicks', 4, 'test', 'clicked');
-- n larger than the split: all its rows
SELECT count(*) FROM trails.read_batch('clicks', 1000, 'test', 'clicked');

-- names are identifiers, quoted: a table whose name needs quotes works as spelled
CREATE TABLE "Visits 2024" (weekday text, minutes float8, label boolean);
INSERT INTO "Visits 2024"
SELECT (ARRAY['mon', 'tue', 'wed', 'thu', 'fri'])[1 + i % 5], i % 13, i % 5 = 1
FROM generate_series(1, 100) AS i;
SELECT * FROM trails.describe('Visits 2024');
