#!/usr/bin/env bash
# What more training buys a preset at one level (docs/results.md, "What more steps buy, one whole schedule per
# budget"): dedicated runs of one recipe, each a whole cosine schedule at its own budget (the points inside one
# schedule under-read a budget: the learning rate is still high there), scored on CBSD68, then read as a curve
# by `python -m train.curve` (gain per doubling, its shrink ratio, the ceiling, the steps to TARGET).
# Runs go PARALLEL at a time (one thread each on a CPU). A run whose evaluation exists is kept; one with a saved
# state is continued exactly (--resume).
#
# Usage: [PRESET=unet-fast] [LEVEL=25] [TARGET=29.3] [PARALLEL=2] scripts/budget_curve.sh DATA_ROOT OUT_DIR STEPSxBATCH...
#   e.g. scripts/budget_curve.sh datasets runs/curve 2250x16 4500x16 9000x16 18000x16
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set14}. Runs are OUT_DIR/dn<LEVEL>-s<STEPS>-b<BATCH>; one
#   curve is printed per batch given at two or more budgets (also written to OUT_DIR/curve-dn<LEVEL>-b<BATCH>.json).
set -u
if [ $# -lt 3 ]; then
  echo "usage: [PRESET=unet-fast] [LEVEL=25] [TARGET=29.3] scripts/budget_curve.sh DATA_ROOT OUT_DIR STEPSxBATCH..." >&2
  exit 2
fi
DATA=$1; OUT=$2; shift 2
PRESET=${PRESET:-unet-fast}; LEVEL=${LEVEL:-25}; PARALLEL=${PARALLEL:-2}
# shellcheck disable=SC2046
set -- $(printf '%s\n' "$@" | awk '!seen[$0]++')  # a budget given twice runs once
for spec in "$@"; do
  if ! [[ $spec =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]]; then
    echo "error: budget '$spec' is not STEPSxBATCH (e.g. 4500x16)" >&2
    exit 2
  fi
done
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  THREADS=""; WORKERS=2
else
  THREADS=1; WORKERS=1
fi
mkdir -p "$OUT"
one() {  # STEPSxBATCH
  local steps=${1%x*} batch=${1#*x} run resume=()
  run="$OUT/dn$LEVEL-s$steps-b$batch"
  [ -f "$run/eval-CBSD68.json" ] && { echo "$(basename "$run"): kept"; return 0; }
  [ -f "$run/last.state.safetensors" ] && resume=(--resume)
  local every=$(( steps / 3 )); [ "$every" -ge 1 ] || every=1
  { env ${THREADS:+OMP_NUM_THREADS=$THREADS} python -m train --task denoise --preset "$PRESET" \
        --baseline-level "$LEVEL" --data "$DATA/train/CBSD432" --exclude 302003.jpg --patch "${PATCH:-96}" \
        --batch "$batch" --val "$DATA/test/Set14" --val-every "$every" --workers "$WORKERS" --steps "$steps" \
        --no-progress --out "$run" "${resume[@]}" \
    && python -m train.evaluate --weights "$run/best.safetensors" --set "$DATA/test/CBSD68" --levels "$LEVEL" \
        --json "$run/eval-CBSD68.json"; } > "$run.log" 2>&1
  local status=$?
  echo "$(basename "$run"): exit $status"
  return $status
}
rc=0; running=0
for spec in "$@"; do
  one "$spec" &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then wait -n || rc=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || rc=1; running=$((running - 1)); done
target=(); [ -n "${TARGET:-}" ] && target=(--target "$LEVEL=$TARGET")
for batch in $(printf '%s\n' "$@" | sed 's/.*x//' | sort -un); do
  runs=()  # the budgets of this batch that trained and were scored (a failed run is reported above)
  for spec in "$@"; do
    run="$OUT/dn$LEVEL-s${spec%x*}-b$batch"
    [ "${spec#*x}" = "$batch" ] && [ -f "$run/eval-CBSD68.json" ] && runs+=("$run")
  done
  [ "${#runs[@]}" -ge 2 ] || continue
  python -m train.curve "${runs[@]}" --set CBSD68 "${target[@]}" --json "$OUT/curve-dn$LEVEL-b$batch.json" || rc=1
done
exit $rc
