#!/usr/bin/env bash
# The sampler's speed levers (issue #17), judged on the test split with paired seeds: the exact commands behind
# docs/results.md's "Speed levers". Each condition is one `training.evaluate` of the shipped bundle on the same
# 100 test clips, the same feature cache (so the same alignment classifier) and the same clip-index seeds, so only
# the sampler setting differs. `base-seed1` is the shipped settings with other seeds: the seed-to-seed spread that
# a lever's difference is read against. Resumable: a condition with a metrics.json is skipped.
#   bash training/recipes/speed.sh evaluate [COND ...]   # all conditions, or the named ones
#   bash training/recipes/speed.sh table                 # the comparison table (Markdown) of what is done
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/.cache/mdsgen-foley/data/foley_real_s0}
RUNS=${RUNS:-$HOME/.cache/mdsgen-foley/runs}
CACHE=${CACHE:-$RUNS/cache-16k-s0}
BUNDLE=${BUNDLE:-resources/models/default}
OUT=${OUT:-$RUNS/speed-levers}
IV='evaluate.guidance_interval=[0.28,5.42]'
declare -A COND=(
  [base]="--set evaluate.guidance_interval=all"  # MDSGen's sampler: DPM-Solver++(2M), 25 steps, every step guided
  [base-seed1]="--set evaluate.guidance_interval=all --set runtime.seed=1000"  # other initial noise: the spread
  [interval]="--set $IV"                        # guidance on the EDM2 interval only (12 of 25 steps)
  [2m-15]="--steps 15 --set evaluate.guidance_interval=all"
  [3m-15]="--steps 15 --set evaluate.solver_order=3 --set evaluate.guidance_interval=all"
  [3m-10]="--steps 10 --set evaluate.solver_order=3 --set evaluate.guidance_interval=all"
  [3m-15-interval]="--steps 15 --set evaluate.solver_order=3 --set $IV"
  [2m-15-interval]="--steps 15 --set $IV"
  [2m-10]="--steps 10 --set evaluate.guidance_interval=all"
  [2m-10-interval]="--steps 10 --set $IV"
)
ORDER=(base base-seed1 interval 3m-15 3m-10 2m-15 2m-15-interval 2m-10 2m-10-interval 3m-15-interval)
[ -f "$DATA/splits.json" ] || .venv/bin/python -m training.datasets.foley_real build --out "$DATA" --seed 0 --num-clips 1000
case "${1:-}" in
  evaluate)
    shift
    names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${ORDER[@]}")
    for n in "${names[@]}"; do
      [ -n "${COND[$n]+x}" ] || { echo "unknown condition $n (known: ${ORDER[*]})" >&2; exit 2; }
      if [ -f "$OUT/$n/metrics.json" ]; then echo "speed: $n done, skipped"; continue; fi
      echo "speed: $n (${COND[$n]:-shipped settings})"
      # shellcheck disable=SC2086
      OMP_WAIT_POLICY=PASSIVE nice -n 5 .venv/bin/python -m training.evaluate "$BUNDLE" --data "$DATA" \
        --cache "$CACHE" --metrics onset,category,fad,alignment --hits auto --controls none \
        --out "$OUT/$n" --no-progress --threads 2 ${COND[$n]}
    done
    ;;
  table) .venv/bin/python -m training.compare_evals --bundle "$BUNDLE" --base "$OUT/base" --noise "$OUT/base-seed1" \
    --json "$OUT/levers.json" "${ORDER[@]/#/$OUT/}" ;;
  *) echo "usage: bash training/recipes/speed.sh evaluate [COND ...] | table" >&2; exit 2 ;;
esac
