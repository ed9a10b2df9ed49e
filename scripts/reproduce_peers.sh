#!/usr/bin/env bash
# Peers: trails (families auto / mlp) vs FLAML AutoML vs one fixed MLP, on frappe, uci_diabetes
# and the three tables of <data>/tabular (fertility, diamonds, movielens).
#   scripts/reproduce_peers.sh [--datasets D ...] [--budgets S ...] [--seeds N ...] [--systems ...]
#                              [--threads 2] [--refinement backend|service] [--resume] [--quick]
# Installs requirements-peers.txt into the venv when flaml is missing, loads the datasets it
# needs when absent (the tabular ones are split 70/20/10 by exps/peers_data.py), then runs
# exps/peers.py with the venv's Python; arguments go to the driver. Results: exps/results/
# (or $TRAILS_RESULTS_DIR); see exps/README.md, "Peers".
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
if ! "$VENV/bin/python" -c "import flaml.automl, lightgbm, xgboost, pandas" 2>/dev/null; then
  echo "installing requirements-peers.txt into $VENV ..."
  "$VENV/bin/python" -m pip install -q -r "$REPO/requirements-peers.txt"
fi
ensure_datasets frappe uci_diabetes
TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}" "$VENV/bin/python" "$REPO/exps/peers_data.py"
start_service_if_needed "$@"
run_driver peers "$@"
