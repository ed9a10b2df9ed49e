#!/usr/bin/env bash
# Experiment 1/7: TFMEM rank correlation with trained archs (ground truth + scores).
#   scripts/reproduce_tfmem_correlation.sh [--dataset frappe|uci_diabetes] [--archs N] [--epochs E] [--iterations I] [--resume] [--quick]
# Loads the datasets it needs when absent, then runs exps/tfmem_correlation.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets "$(datasets_from_args frappe "$@")"
start_service_if_needed "$@"
run_driver tfmem_correlation "$@"
