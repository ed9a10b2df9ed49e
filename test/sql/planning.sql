-- planning: how the coordinator splits a time budget between filtering (N archs scored at
-- t1 seconds each) and refinement (K archs trained by successive halving, U epochs each in the
-- first rung, t2 seconds per epoch). N = 100 K (ratio), eta = 3, at most 27 epochs a model.
\set SHOW_CONTEXT never

-- one arch scored in 1 ms, one epoch in 2 s: more budget, more candidates (8 s is below the
-- 8.2 s that 2 candidates for 1 epoch cost: filtering only, see below)
SELECT budget_s, c.n, c.k, c.u
FROM (VALUES (8), (9), (10), (30), (60), (300), (3600)) AS b(budget_s),
     LATERAL coordinator(budget_s, 0.001, 2) AS c
ORDER BY budget_s;

-- faster training (0.5 s an epoch, 0.2 ms an arch): many more candidates for the same budget
SELECT * FROM coordinator(60, 0.0002, 0.5);
SELECT * FROM coordinator(600, 0.0002, 0.5);
-- a slow TFMEM (10 ms an arch) takes its share
SELECT * FROM coordinator(60, 0.01, 1);
-- a day
SELECT * FROM coordinator(86400, 0.0001, 30);

-- filtering only: not even 2 candidates for 1 epoch fit, so N = floor(budget / t1), K = 1,
-- U = 0 (the best-scored arch is the answer, untrained by refinement)
SELECT * FROM coordinator(5, 0.003, 10);
SELECT * FROM coordinator(1, 0.003, 10);
-- just enough for one arch
SELECT * FROM coordinator(0.004, 0.003, 10);

-- N is always 100 K when there is a refinement
SELECT bool_and(c.n = 100 * c.k) AS n_is_100_k, bool_and(c.u >= 1) AS u_at_least_1
FROM generate_series(10, 1000, 10) AS budget_s, LATERAL coordinator(budget_s, 0.001, 2) AS c;
-- more budget never means fewer candidates
SELECT bool_and(k >= previous_k) AS k_never_decreases
FROM (SELECT c.k, lag(c.k, 1, 0) OVER (ORDER BY budget_s) AS previous_k
      FROM generate_series(10, 1000, 10) AS budget_s,
           LATERAL coordinator(budget_s, 0.001, 2) AS c) AS s;

-- the arguments may be named
SELECT * FROM coordinator(t1 => 0.001, t2 => 2, budget_s => 60);
