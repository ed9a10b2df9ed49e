-- trails: the extension's own tables live in schema trails.
CREATE SCHEMA trails;

-- One row per (train table, label, row count, layout settings and task): how rows become
-- feature ids. Not UNIQUE on purpose: calls that infer the same new layout at once each store
-- theirs (identical) instead of waiting on each other's transactions; lookups take the first.
CREATE TABLE trails.layouts (
    layout_id   bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    train_table text NOT NULL,
    label       text NOT NULL,
    train_rows  bigint NOT NULL,
    settings    text NOT NULL,
    layout      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    extends_layout bigint REFERENCES trails.layouts  -- a warm start's: that layout, its ids kept (NULL: inferred)
);
CREATE INDEX ON trails.layouts (train_table, label, train_rows, settings);
SELECT pg_catalog.pg_extension_config_dump('trails.layouts', '');
SELECT pg_catalog.pg_extension_config_dump('trails.layouts_layout_id_seq', '');  -- pg_dump keeps where ids go on

-- One row per finished model_selection call (written at the end, in a subtransaction with
-- its model: a failed or cancelled call leaves no row).
CREATE TABLE trails.runs (
    run_id      bigserial PRIMARY KEY,
    dataset     text NOT NULL,
    label       text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    budget_s    float8,                 -- NULL: budgeted in trials (max_trials)
    tfmem       text NOT NULL,
    refinement  text NOT NULL,          -- where the candidates trained: 'service' | 'backend'
    n_scored    int NOT NULL,
    k_refined   int NOT NULL,
    u           int NOT NULL,
    t1          float8 NOT NULL,        -- measured seconds to score one arch
    t2          float8 NOT NULL,        -- measured seconds per training epoch of one model
    phases      jsonb NOT NULL,         -- seconds per phase, rung results, deadline flags
    best_arch   text NOT NULL,
    task        text NOT NULL,          -- 'binary' | 'multiclass' | 'regression'
    metric      text NOT NULL,          -- what selected the model (valid_score, test_score)
    valid_score float8,
    test_score  float8,
    valid_auc   float8,                 -- binary only (NULL otherwise)
    test_auc    float8,
    elapsed_s   float8 NOT NULL,
    seed        int NOT NULL,           -- model_selection's seed argument
    families    text NOT NULL DEFAULT 'mlp',  -- model_selection's families argument (0.2.0: MLPs only)
    family      text NOT NULL DEFAULT 'mlp',  -- the winner's model family (best_arch is its candidate)
    family_scores jsonb,                -- each family's best valid score (the decision sample's)
    warm_start  jsonb,                  -- what a warm start reused (NULL: a cold start)
    status      text NOT NULL DEFAULT 'done',
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.runs', '');
SELECT pg_catalog.pg_extension_config_dump('trails.runs_run_id_seq', '');  -- pg_dump keeps where ids go on

-- The selected models: architecture, encoding (layout) and weights (torch state_dict).
CREATE TABLE trails.models (
    model_id    bigserial PRIMARY KEY,
    run_id      bigint REFERENCES trails.runs ON DELETE CASCADE,
    dataset     text NOT NULL,
    layout_id   bigint NOT NULL REFERENCES trails.layouts,
    arch        text NOT NULL,
    hyper       jsonb NOT NULL,         -- n_ids, n_fields, n_outputs, embedding_dim, batch_norm, epochs, ...
    weights     bytea NOT NULL,
    task        text NOT NULL,          -- the layout's task; metric: what selected it
    metric      text NOT NULL,
    params      bigint NOT NULL,        -- parameters of the MLP (weights, biases, BatchNorm)
    valid_score float8,
    test_score  float8,
    valid_auc   float8,                 -- binary only (NULL otherwise)
    test_auc    float8,
    refit_of    bigint REFERENCES trails.models ON DELETE SET NULL,  -- trails.refit's source model
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.models', '');
SELECT pg_catalog.pg_extension_config_dump('trails.models_model_id_seq', '');  -- pg_dump keeps where ids go on

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
SELECT pg_catalog.pg_extension_config_dump('trails.deployments_deployment_id_seq', '');  -- pg_dump keeps where ids go on

-- TFMEM scores of archs, kept for warm starts (trails.selection.score_cache): one row per
-- scoring signature (TFMEM, seed, space, the MLP's input and output widths and, for a
-- data-dependent TFMEM, its batch of rows); archs and scores are parallel arrays.
CREATE TABLE trails.tfmem_scores (
    signature  text PRIMARY KEY,
    tfmem      text NOT NULL,
    seed       int NOT NULL,
    archs      text[] NOT NULL,         -- '64-128-64'
    scores     float8[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
SELECT pg_catalog.pg_extension_config_dump('trails.tfmem_scores', '');
