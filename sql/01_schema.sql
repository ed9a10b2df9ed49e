-- trails: the extension's own tables live in schema trails.
CREATE SCHEMA trails;

-- One row per (train table, label, row count, layout settings): how rows become feature ids.
CREATE TABLE trails.layouts (
    layout_id   bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    train_table text NOT NULL,
    label       text NOT NULL,
    train_rows  bigint NOT NULL,
    settings    text NOT NULL,
    layout      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (train_table, label, train_rows, settings)
);
SELECT pg_catalog.pg_extension_config_dump('trails.layouts', '');
