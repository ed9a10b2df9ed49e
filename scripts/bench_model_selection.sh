#!/usr/bin/env bash
# Budget adherence of model_selection on frappe: for budgets 30, 60 and 120 s (or those given),
# the elapsed time, the limit budget x 1.05 + 2, and the test AUC reached, for the refinement
# service and for the in-backend path.
#   scripts/bench_model_selection.sh [BUDGET ...]        (modes: TRAILS_BENCH_MODES="service backend")
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGDATABASE="${PGDATABASE:-trails}"
BUDGETS=("$@")
[ ${#BUDGETS[@]} -gt 0 ] || BUDGETS=(30 60 120)
MODES="${TRAILS_BENCH_MODES:-service backend}"
PSQL="psql -X -v ON_ERROR_STOP=1 -q"
if [ "$($PSQL -tAc "SELECT to_regclass('frappe_test') IS NOT NULL")" != "t" ]; then
  bash "$REPO/scripts/load_dataset.sh" frappe
fi
$PSQL -c "CREATE EXTENSION IF NOT EXISTS trails CASCADE"
case " $MODES " in *" service "*) bash "$REPO/scripts/start_refinement_service.sh" --background ;; esac
printf '%-8s %8s %10s %9s %6s %9s %9s %5s %4s %2s  %s\n' mode budget_s elapsed_s limit_s ok \
  valid_auc test_auc N K U best_arch
for mode in $MODES; do
  for budget in "${BUDGETS[@]}"; do
    row="$($PSQL -tA -F ' ' -c "SELECT elapsed_s, valid_auc, test_auc, n_scored, k_refined, u, best_arch
                               FROM model_selection('frappe', $budget, refinement => '$mode', warm_start => false)" 2>/dev/null)"
    read -r elapsed valid test n k u arch <<<"$row"
    awk -v m="$mode" -v b="$budget" -v e="$elapsed" -v va="$valid" -v ta="$test" -v n="$n" -v k="$k" \
        -v u="$u" -v a="$arch" 'BEGIN { l = b * 1.05 + 2; printf "%-8s %8.0f %10.2f %9.2f %6s %9.4f %9.4f %5d %4d %2d  %s\n",
        m, b, e, l, (e <= l ? "yes" : "NO"), va, ta, n, k, u, a }'
  done
done
