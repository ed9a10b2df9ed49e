"""The reproduction experiments (issue #5) end to end, CI-sized: ``scripts/reproduce_all.sh
--quick`` against this test's database, results in a temporary folder (never exps/results/).
Every expected CSV and PNG must exist, with its columns and plausible values."""

import csv
import math
import os
import subprocess
import time

from conftest import REPO

# the CI bound for the whole quick run (its target on 2 cores is 4 minutes)
QUICK_LIMIT_S = 300

COLUMNS = {
    "frappe_groundtruth_quick": {"arch", "epoch", "valid_auc", "train_seconds"},
    "uci_diabetes_groundtruth_quick": {"arch", "epoch", "valid_auc", "train_seconds"},
    "tfmem_scores_frappe_quick": {"arch", "express_flow", "synflow", "nas_wot"},
    "tfmem_correlation_frappe_quick": {"metric", "epoch", "spearman", "kendall", "spearman_top10"},
    "tfmem_correlation_uci_diabetes_quick": {"metric", "epoch", "spearman", "kendall", "spearman_top10"},
    "anytime_frappe_quick": {"system", "budget_s", "seed", "test_auc", "valid_auc", "elapsed_s"},
    "anytime_uci_diabetes_quick": {"system", "budget_s", "seed", "test_auc", "valid_auc", "elapsed_s"},
    "anytime_targets_frappe_quick": {"target_auc", "system", "first_budget_s"},
    "nku_tradeoff_quick": {"n", "k", "u", "ratio", "test_auc", "deadline_hit"},
    "filtering_latency_quick": {"tfmem", "n", "path", "read_s", "score_s", "total_s"},
    "budget_adherence_quick": {"dataset", "budget_s", "elapsed_s", "limit_s", "within_limit"},
    "gbdt_baseline_quick": {"dataset", "model", "test_auc", "fit_s"},
}
PNGS = ["tfmem_correlation_frappe_quick", "tfmem_correlation_uci_diabetes_quick",
        "anytime_frappe_quick", "anytime_uci_diabetes_quick", "nku_tradeoff_quick",
        "filtering_latency_quick", "budget_adherence_quick", "gbdt_baseline_quick"]


def _rows(folder, name):
    with open(folder / f"{name}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _auc_ok(value) -> bool:
    return 0.5 < float(value) <= 1.0


def test_reproduce_all_quick(pg_dsn, tmp_path):
    info = dict(part.split("=", 1) for part in pg_dsn.split())
    results = tmp_path / "results"
    env = dict(os.environ, PGHOST=info["host"], PGPORT=info["port"], PGUSER=info["user"],
               PGDATABASE=info["dbname"], TRAILS_RESULTS_DIR=str(results),
               TRAILS_RUN_DIR=str(tmp_path / "run"))
    started = time.monotonic()
    process = subprocess.run(["bash", str(REPO / "scripts" / "reproduce_all.sh"), "--quick"], env=env,
                             capture_output=True, text=True, timeout=2 * QUICK_LIMIT_S)
    seconds = time.monotonic() - started
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-4000:]
    assert seconds <= QUICK_LIMIT_S, f"reproduce_all.sh --quick took {seconds:.0f} s"

    for name, columns in COLUMNS.items():
        rows = _rows(results, name)
        assert rows, name
        assert columns <= set(rows[0]), (name, set(rows[0]))
    for name in PNGS:
        data = (results / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert not any(path.suffix not in (".csv", ".png") for path in results.iterdir())

    # ground truth: one row per arch and epoch, AUCs and seconds that make sense
    truth = _rows(results, "frappe_groundtruth_quick")
    assert len({r["arch"] for r in truth}) == 12
    assert all(0 <= float(r["valid_auc"]) <= 1 and float(r["train_seconds"]) > 0 for r in truth)
    assert max(float(r["valid_auc"]) for r in truth) > 0.6  # some arch learned something

    from trails.tfmem import metric_names

    for dataset in ("frappe", "uci_diabetes"):
        correlation = _rows(results, f"tfmem_correlation_{dataset}_quick")
        assert {r["metric"] for r in correlation} == set(metric_names()) | {"n_params"}
        for r in correlation:
            for key in ("spearman", "kendall", "spearman_top10"):
                value = float(r[key])
                assert math.isnan(value) or -1 <= value <= 1, (dataset, r)
        flows = [r for r in correlation if r["metric"] in ("express_flow", "synflow")]
        assert all(math.isfinite(float(r["spearman"])) for r in flows)

    for dataset in ("frappe", "uci_diabetes"):
        anytime = _rows(results, f"anytime_{dataset}_quick")
        assert {r["system"] for r in anytime} == {"trails", "filtering_only", "training_based"}
        budgets = {float(r["budget_s"]) for r in anytime}
        assert len(anytime) == 3 * len(budgets)
        for r in anytime:
            assert _auc_ok(r["test_auc"]) and _auc_ok(r["valid_auc"]), r
            assert 0 < float(r["elapsed_s"]) <= float(r["budget_s"]) * 1.5 + 3, r
            if r["system"] == "trails":
                assert float(r["elapsed_s"]) <= float(r["budget_s"]) * 1.05 + 2, r

    nku = _rows(results, "nku_tradeoff_quick")
    assert len(nku) >= 4
    assert all(_auc_ok(r["test_auc"]) and int(r["n"]) == int(r["ratio"]) * int(r["k"]) for r in nku)

    latency = _rows(results, "filtering_latency_quick")
    assert {r["path"] for r in latency} == {"in_db", "out_of_db"}
    assert all(float(r["read_s"]) >= 0 and float(r["score_s"]) > 0 for r in latency)
    assert all(float(r["total_s"]) >= float(r["score_s"]) for r in latency)

    adherence = _rows(results, "budget_adherence_quick")
    assert adherence and all(r["within_limit"] == "True" for r in adherence)

    gbdt = _rows(results, "gbdt_baseline_quick")
    for dataset in ("frappe", "uci_diabetes"):
        models = {r["model"] for r in gbdt if r["dataset"] == dataset}
        assert {"hgb_default", "hgb_tuned"} <= models and any(m.startswith("trails") for m in models)
    assert all(_auc_ok(r["test_auc"]) and float(r["fit_s"]) > 0 for r in gbdt)
