#!/usr/bin/env bash
# Experiment 4: filtering latency in-DB (SPI) vs out-of-DB (psycopg2), read vs score.
#   scripts/reproduce_filtering_latency.sh [--ns N ...] [--tfmems M ...] [--repeats R] [--quick]
# Loads the datasets it needs when absent, then runs exps/filtering_latency.py with the venv's Python;
# arguments go to the driver. Results: exps/results/ (or $TRAILS_RESULTS_DIR); see exps/README.md.
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets "$(datasets_from_args frappe "$@")"
start_service_if_needed "$@"
run_driver filtering_latency "$@"
