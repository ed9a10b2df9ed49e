#!/usr/bin/env bash
# Experiment 2/7: test AUC vs time budget for model_selection, filtering only, training-based.
#   scripts/reproduce_anytime.sh [--dataset frappe|uci_diabetes] [--budgets S ...] [--seeds N] [--refinement backend|service] [--resume] [--quick]
# Loads the datasets it needs when absent, then runs exps/anytime.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets "$(datasets_from_args frappe "$@")"
start_service_if_needed "$@"
run_driver anytime "$@"
