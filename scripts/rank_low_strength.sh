#!/usr/bin/env bash
# Rank the fixes for the low-strength collapse side by side at one equal, short budget (docs/results.md,
# "The low-strength collapse"): the same `fast` topology (the u-runs: the multi-scale presets), data, crops,
# optimiser and step count; only the level form, the level convs per block, the output conv's factor, the
# strength map, the level sampling and the loss weighting differ. Each run is then scored on Set14 (the selection set) and CBSD68 at sigma 0 5 15 25 50 75
# (eval-<SET>.json in each run folder). OMP_NUM_THREADS=1 runs two scripts side by side on two cores.
#
# Usage: [RUNS="r1-linear-points ..."] [STEPS=2000] scripts/rank_low_strength.sh DATA_ROOT OUT_DIR
set -u
if [ $# -lt 2 ]; then
  echo "usage: [RUNS=\"...\"] [STEPS=N] scripts/rank_low_strength.sh DATA_ROOT OUT_DIR" >&2
  exit 2
fi
DATA=$1; OUT=$2; STEPS=${STEPS:-2000}
mkdir -p "$OUT"
args() {  # the candidate's training options
  case $1 in
    r1-linear-points)   echo "--form linear --level-jitter 0.5" ;;  # the shipped recipe (seed's map and levels)
    r2-linear-strata)   echo "--form linear --level-sampling strata" ;;
    r3-linear1-strata)  echo "--form linear --block-levels 1 --level-sampling strata" ;;
    r4-linear-offset)   echo "--form linear --strength-offset 0.5 --level-sampling strata" ;;
    r5-affine-strata)   echo "--form affine --level-sampling strata" ;;
    r6-shift-strata)    echo "--form shift --level-sampling strata" ;;
    r7-shift-points)    echo "--form shift --level-jitter 0.5" ;;
    r8-affine-floor)    echo "--form affine --level-sampling strata --weight-floor 5" ;;
    r9-shift-floor)     echo "--form shift --level-sampling strata --weight-floor 5" ;;
    r10-linear-floor)   echo "--form linear --level-sampling strata --weight-floor 5" ;;
    r11-shift-gate)     echo "--form shift --out-gate unit --level-sampling strata --weight-floor 5" ;;
    r12-affine-gate)    echo "--form affine --out-gate unit --level-sampling strata --weight-floor 5" ;;
    # the multi-scale presets (train.model.PRESETS) with the two best forms of the ranking above
    u1-unetfast-affine) echo "--preset unet-fast --form affine --level-sampling strata" ;;
    u2-unetfast-shift)  echo "--preset unet-fast --form shift --level-sampling strata" ;;
    u3-unetmobile-affine) echo "--preset unet-mobile --form affine --level-sampling strata" ;;
    *) echo "unknown run $1" >&2; return 1 ;;
  esac
}
RUNS=${RUNS:-"r1-linear-points r2-linear-strata r3-linear1-strata r4-linear-offset r5-affine-strata r6-shift-strata"}
rc=0
for name in $RUNS; do
  opts=$(args "$name") || { rc=1; continue; }
  # shellcheck disable=SC2086
  { python -m train --task denoise --preset fast --levels 15 35 55 75 $opts --data "$DATA/train/CBSD432" \
        --exclude 302003.jpg --steps "$STEPS" --batch 16 --patch 64 --val "$DATA/test/Set14" --val-every 1000 \
        --no-progress --out "$OUT/$name" \
    && for set in Set14 CBSD68; do
         python -m train.evaluate --weights "$OUT/$name/last.safetensors" --set "$DATA/test/$set" \
             --levels 0 5 15 25 50 75 --json "$OUT/$name/eval-$set.json" || exit 1
       done; } > "$OUT/$name.log" 2>&1
  status=$?
  echo "$name: exit $status"
  [ $status = 0 ] || rc=1
done
exit $rc
