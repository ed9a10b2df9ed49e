-- filtering: score n archs of the search space with a TFMEM, keep the best k.
-- Scores are floats whose last digits depend on the CPU: only ranks and archs are shown.
-- Progress NOTICEs carry timings: they are hidden.
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- ExpressFlow (data-agnostic: it needs only the input width) with each search strategy
SELECT rank, arch FROM filtering_phase('shop', 50, 5, 'express_flow', 'random', 'label', 1);
SELECT rank, arch FROM filtering_phase('shop', 300, 5, 'express_flow', 'evolution', 'label', 1);
-- exhaustive: the first n archs of the space in enumeration order (8-8-8-8, 8-8-8-16, ...)
SELECT rank, arch FROM filtering_phase('shop', 40, 5, 'express_flow', 'exhaustive', 'label', 1);
-- the defaults: express_flow, evolution, label 'label', seed 0
SELECT rank, arch FROM filtering_phase('shop', 100, 3);

-- a data-dependent TFMEM: NASWOT scores each arch on a batch of train rows
SELECT rank, arch FROM filtering_phase('shop', 30, 5, 'nas_wot', 'random', 'label', 1);
SELECT rank, arch FROM filtering_phase('shop', 30, 5, 'nas_wot', 'evolution', 'label', 2);
SELECT rank, arch FROM filtering_phase('clicks', 30, 5, 'nas_wot', 'random', 'clicked', 1);

-- ranks run 1..k and scores do not increase with the rank
SELECT count(*) AS archs, min(rank) AS first, max(rank) AS last,
       count(DISTINCT arch) AS distinct_archs,
       bool_and(score IS NOT NULL AND score = score) AS scored,
       bool_and(next_score IS NULL OR score >= next_score) AS best_first
FROM (SELECT rank, arch, score, lead(score) OVER (ORDER BY rank) AS next_score
      FROM filtering_phase('shop', 200, 20, 'express_flow', 'evolution', 'label', 3)) AS f;
-- k = n: every scored arch comes back, each once
SELECT count(*) AS archs, count(DISTINCT arch) AS distinct_archs
FROM filtering_phase('shop', 64, 64, 'express_flow', 'random', 'label', 5);

-- the same seed gives the same archs (rows of one call missing from the other: none)
CREATE TEMP TABLE run_a AS
    SELECT rank, arch FROM filtering_phase('shop', 200, 10, 'express_flow', 'evolution', 'label', 7);
CREATE TEMP TABLE run_b AS
    SELECT rank, arch FROM filtering_phase('shop', 200, 10, 'express_flow', 'evolution', 'label', 7);
(SELECT * FROM run_a EXCEPT SELECT * FROM run_b)
UNION ALL
(SELECT * FROM run_b EXCEPT SELECT * FROM run_a);
CREATE TEMP TABLE wot_a AS
    SELECT rank, arch FROM filtering_phase('shop', 20, 5, 'nas_wot', 'evolution', 'label', 7);
CREATE TEMP TABLE wot_b AS
    SELECT rank, arch FROM filtering_phase('shop', 20, 5, 'nas_wot', 'evolution', 'label', 7);
(SELECT * FROM wot_a EXCEPT SELECT * FROM wot_b)
UNION ALL
(SELECT * FROM wot_b EXCEPT SELECT * FROM wot_a);

-- another seed gives other archs
CREATE TEMP TABLE run_c AS
    SELECT rank, arch FROM filtering_phase('shop', 200, 10, 'express_flow', 'evolution', 'label', 8);
SELECT (SELECT array_agg(arch ORDER BY rank) FROM run_a)
       IS DISTINCT FROM (SELECT array_agg(arch ORDER BY rank) FROM run_c) AS seed_8_differs;
SELECT (SELECT array_agg(arch ORDER BY rank)
        FROM filtering_phase('shop', 50, 5, 'express_flow', 'random', 'label', 1))
       IS DISTINCT FROM
       (SELECT array_agg(arch ORDER BY rank)
        FROM filtering_phase('shop', 50, 5, 'express_flow', 'random', 'label', 2)) AS seed_2_differs;

-- every arch has 4 layers whose widths come from the space's 20 widths
SELECT bool_and(array_length(w, 1) = 4) AS four_layers,
       bool_and(w <@ ARRAY[8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224,
                           240, 256, 384, 512]) AS widths_in_space
FROM (SELECT string_to_array(arch, '-')::int[] AS w FROM run_c) AS s;

-- t1, the seconds to score one arch, measured now: only its sign is shown
SELECT profiling_filtering_phase('shop') > 0 AS t1_positive;
SELECT profiling_filtering_phase('shop', 'nas_wot') > 0 AS t1_positive;
SELECT profiling_filtering_phase('clicks', 'synflow', 'clicked') > 0 AS t1_positive;

-- the in-database latency benchmark: timings only, shown as signs
SELECT read_s >= 0 AS read, score_s > 0 AS score, total_s >= score_s AS total,
       archs_per_s > 0 AS rate
FROM benchmark_filtering_latency_in_db(20, 'shop');
SELECT read_s >= 0 AS read, score_s > 0 AS score, total_s >= score_s AS total,
       archs_per_s > 0 AS rate
FROM benchmark_filtering_latency_in_db(10, 'clicks', 16, 'nas_wot', 'clicked');

RESET client_min_messages;
