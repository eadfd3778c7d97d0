#!/usr/bin/env bash
# Train the shipped weight sets and their comparison runs concurrently on one GPU (or one after another on a
# CPU: SEQUENTIAL=1), then evaluate them.
#
# Usage: [RUNS="dn-mobile-linear ..."] scripts/train_shipped.sh DATA_ROOT OUT_DIR [BUDGET] [extra train args...]
#   BUDGET: wall-clock minutes per run (default 6), or a step count such as 8000steps.
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set5,Set14,Classic5} (see the datasets README).
# Every run gets the same budget; steps reached and steps/s are in each checkpoint's JSON.
# Run names: dn|dj|sr-<preset>-linear|affine|affine-nw (one weight set; -nw: plain mean L1), and
# dn25-mobile-dedicated, dj30-fast-dedicated, sr4-mobile-dedicated ... (a plain single-level baseline at
# that test level). Presets are those of train.model (mobile, fast, paper ...). WORKERS overrides the
# data-loader processes per run.
# The seed's tables need, per task, the linear and affine runs and a dedicated run at every test level:
#   RUNS="dn-mobile-linear dn-mobile-affine $(for l in 5 25 45 65 90; do echo dn$l-mobile-dedicated; done)"
set -u
if [ $# -lt 2 ]; then
  echo "usage: [RUNS=\"...\"] [SEQUENTIAL=1] scripts/train_shipped.sh DATA_ROOT OUT_DIR [BUDGET] [extra train args...]" >&2
  exit 2
fi
DATA=$1; OUT=$2; BUDGET=${3:-6}; shift 3 || shift $#
if [[ $BUDGET == *steps ]]; then BUDGET=(--steps "${BUDGET%steps}"); else BUDGET=(--minutes "$BUDGET"); fi
EXTRA=("$@")
RUNS=${RUNS:-"dn-mobile-linear dn-mobile-affine dn25-mobile-dedicated dn-paper-linear dj-mobile-linear sr-mobile-linear"}
mkdir -p "$OUT"
DN="0 5 15 25 35 45 55 65 75 90"
run() {  # name, eval set, eval levels, train args...
  local name=$1 set=$2 levels=$3 status; shift 3
  { python -m train --data "$DATA/train/CBSD432" --out "$OUT/$name" "${BUDGET[@]}" --no-progress \
        --val-every 2000 "$@" ${EXTRA[@]+"${EXTRA[@]}"} \
    && python -m train.evaluate --weights "$OUT/$name/best.safetensors" --set "$DATA/test/$set" \
        --levels $levels --json "$OUT/$name/eval-$set.json"; } > "$OUT/$name.log" 2>&1
  status=$?
  echo "$name: exit $status"
  return $status
}
rc=0; pids=()
start() {  # run concurrently (one GPU), or one after another with SEQUENTIAL=1 (a CPU)
  if [ "${SEQUENTIAL:-0}" = 1 ]; then "$@" || rc=1; else "$@" & pids+=($!); fi
}
finish() {  # wait for the concurrent jobs; any failure makes the script's exit status 1
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" || rc=1; done
  pids=()
}
for name in $RUNS; do
  # <task>[<level>]-<preset>-<kind>: dn|dj|sr, a preset of train.model, linear|affine|affine-nw|dedicated
  IFS=- read -r head preset kind <<< "$name"
  task=${head:0:2}; lv=${head:2}
  case $task in
    dn) args=(--task denoise --levels 15 35 55 75 --val "$DATA/test/Set14"); set=CBSD68; levels=$DN; neutral=0
        workers=1 ;;
    dj) args=(--task dejpeg --levels 10 30 50 80 --val "$DATA/test/CBSD68"); set=Classic5
        levels="10 30 50 70 80 90 100"; neutral=100; workers=2 ;;
    sr) args=(--task sr --levels 2 3 4 5 --exclude 302003.jpg --val "$DATA/test/CBSD68"); set=Set5
        levels="1 2 3 4 5 6"; neutral=1; workers=2 ;;
    *) echo "unknown run $name" >&2; rc=1; continue ;;
  esac
  case $kind in
    linear|affine) args+=(--form "$kind") ;;
    affine-nw) args+=(--form affine --level-weighting none) ;;
    dedicated) [ -n "$lv" ] || { echo "unknown run $name (a dedicated run names its level)" >&2; rc=1; continue; }
        args+=(--baseline-level "$lv"); levels="$neutral $lv" ;;
    *) echo "unknown run $name" >&2; rc=1; continue ;;
  esac
  start run "$name" "$set" "$levels" "${args[@]}" --preset "$preset" --workers "${WORKERS:-$workers}"
done
finish
# The second test set of each task: LIVE1 for de-JPEG, Set14 for SR (the levels each run was evaluated at).
for name in $RUNS; do
  best="$OUT/$name/best.safetensors"
  [ -f "$best" ] || continue
  case $name in
    dj*-dedicated) lv=${name#dj}; set=LIVE1_color; levels="100 ${lv%%-*}" ;;
    dj*) set=LIVE1_color; levels="10 30 50 70 80 90 100" ;;
    sr*-dedicated) lv=${name#sr}; set=Set14; levels="1 ${lv%%-*}" ;;
    sr*) set=Set14; levels="1 2 3 4 5 6" ;;
    *) continue ;;
  esac
  start python -m train.evaluate --weights "$best" --set "$DATA/test/$set" --levels $levels \
      --json "$OUT/$name/eval-$set.json" >> "$OUT/$name.log" 2>&1
done
finish
exit $rc
