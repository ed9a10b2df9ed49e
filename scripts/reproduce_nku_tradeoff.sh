#!/usr/bin/env bash
# Experiment 3: N/K/U trade-off at a fixed budget (heat map).
#   scripts/reproduce_nku_tradeoff.sh [--budget S] [--ks K ...] [--us U ...] [--ratios R ...] [--quick]
# Loads the datasets it needs when absent, then runs exps/nku_tradeoff.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets "$(datasets_from_args frappe "$@")"
start_service_if_needed "$@"
run_driver nku_tradeoff "$@"
