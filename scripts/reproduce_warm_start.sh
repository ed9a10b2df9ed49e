#!/usr/bin/env bash
# Re-selection when the table grows: the deployed old model vs cold and warm model_selection on
# frappe (rows by id) and movielens (rows by timestamp), old 80 % then +20 %, same test rows.
#   scripts/reproduce_warm_start.sh [--datasets frappe movielens] [--budget 30] [--seeds 3]
#                                   [--threads 2] [--quick]
# Loads frappe when absent and movielens through exps/peers_data.py; results in exps/results/
# (or $TRAILS_RESULTS_DIR): warm_start.{csv,png,txt}; see exps/README.md, "Warm starts".
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets frappe
TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}" "$VENV/bin/python" "$REPO/exps/peers_data.py" movielens
run_driver warm_start "$@"
