#!/usr/bin/env bash
# Experiment 6: HistGradientBoostingClassifier on the same splits, beside model_selection.
#   scripts/reproduce_gbdt_baseline.sh [--datasets D ...] [--budget S] [--quick]
# Loads the datasets it needs when absent, then runs exps/gbdt_baseline.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets frappe uci_diabetes
start_service_if_needed "$@"
run_driver gbdt_baseline "$@"
