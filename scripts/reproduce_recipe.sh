#!/usr/bin/env bash
# The MLP's recipe (issue #22): the selected recipe vs TRAILS' fixed one in the same race (same
# archs, same budget, 3 seeds, interleaved), and each recipe alone on one arch.
#   scripts/reproduce_recipe.sh [--part race|recipes] [--datasets frappe uci_diabetes ...]
#                               [--budget 60] [--seeds 3] [--variants before selected]
#                               [--recipes "run's" emb16 ...] [--tag T] [--threads 2] [--quick]
# Loads frappe and uci_diabetes when absent and the tabular tables through exps/peers_data.py;
# results in exps/results/ (or $TRAILS_RESULTS_DIR): recipe[_portfolio][_T].{csv,txt}; see
# exps/README.md, "The MLP's recipe".
source "$(dirname "${BASH_SOURCE[0]}")/reproduce_lib.sh"
ensure_datasets frappe uci_diabetes
TRAILS_CONFIG="${TRAILS_CONFIG:-$REPO/config.ini}" "$VENV/bin/python" "$REPO/exps/peers_data.py"
run_driver recipe "$@"
