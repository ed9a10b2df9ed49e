#!/usr/bin/env bash
# Experiment 5: model_selection elapsed vs budget (reuses experiment 2's runs when present).
#   scripts/reproduce_budget_adherence.sh [--datasets D ...] [--budgets S ...] [--quick]
# Loads the datasets it needs when absent, then runs exps/budget_adherence.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets frappe
start_service_if_needed "$@"
run_driver budget_adherence "$@"
