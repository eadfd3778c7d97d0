#!/usr/bin/env bash
# The paper-preset denoiser in one bounded GPU job, then the trainer's throughput beside a plain loop:
#   1. train   --preset paper, the seed's levels (sigma 15 35 55 75), --level-jitter 0.5, BUDGET
#   2. evaluate the best checkpoint on CBSD68 (sigma 0 5 15 ... 90)
#   3. calibrate its level map on Set14 (train.calibrate) and evaluate the calibrated map on CBSD68
#   4. time the trainer's step against the plain reference loop (train.throughput), once per compile mode
#      (reduce-overhead: CUDA graphs, the trainer's default; then default); each has its own JSON
# Every step runs even when an earlier optional one fails; the exit status is that of the training and
# evaluation steps.
#
# Usage: [PRESET=paper] [TP_STEPS=100] [TP_WARMUP=25] scripts/train_paper_gpu.sh DATA_ROOT OUT_DIR [BUDGET]
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set14}; BUDGET: minutes (default 6) or Nsteps.
#   OUT_DIR receives run/ (the training run and its eval-CBSD68.json: `python -m train.ship OUT_DIR/run
#   --name ...` ships it) and flat copies of what to keep: best.safetensors, cal.safetensors,
#   eval-CBSD68.json, eval-cal-CBSD68.json, throughput-<mode>.json.
set -u
if [ $# -lt 2 ]; then
  echo "usage: [PRESET=paper] [TP_STEPS=100] [TP_WARMUP=25] scripts/train_paper_gpu.sh DATA_ROOT OUT_DIR [BUDGET]" >&2
  exit 2
fi
DATA=$1; OUT=$2; BUDGET=${3:-6}
PRESET=${PRESET:-paper}; TP_STEPS=${TP_STEPS:-100}; TP_WARMUP=${TP_WARMUP:-25}
if [[ $BUDGET == *steps ]]; then B=(--steps "${BUDGET%steps}"); else B=(--minutes "$BUDGET"); fi
DN="0 5 15 25 35 45 55 65 75 90"
rc=0
python -m train --task denoise --preset "$PRESET" --form linear --levels 15 35 55 75 --level-jitter 0.5 \
    --data "$DATA/train/CBSD432" --val "$DATA/test/Set14" --val-every 2000 "${B[@]}" --no-progress \
    --out "$OUT/run" || exit 1  # train makes OUT/run (and OUT); bad input leaves neither
cp "$OUT/run/best.safetensors" "$OUT/best.safetensors"
python -m train.evaluate --weights "$OUT/run/best.safetensors" --set "$DATA/test/CBSD68" --levels $DN \
    --json "$OUT/run/eval-CBSD68.json" && cp "$OUT/run/eval-CBSD68.json" "$OUT/" || rc=1
python -m train.calibrate --weights "$OUT/best.safetensors" --set "$DATA/test/Set14" -o "$OUT/cal.safetensors" \
  && python -m train.evaluate --weights "$OUT/cal.safetensors" --set "$DATA/test/CBSD68" --levels $DN \
    --json "$OUT/eval-cal-CBSD68.json" || rc=1
for mode in reduce-overhead default; do
  python -m train.throughput --preset "$PRESET" --steps "$TP_STEPS" --warmup "$TP_WARMUP" --compile-modes "$mode" \
      --json "$OUT/throughput-$mode.json" || echo "throughput ($mode) failed"
done
exit $rc
