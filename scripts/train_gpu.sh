#!/usr/bin/env bash
# One bounded GPU batch behind the shipped mobile weights, every run concurrently on one GPU with the same
# wall-clock budget, then evaluated:
#   dn-mobile-jitter   a mobile denoiser (DN_INIT: a checkpoint or shipped name, default
#                      train/candidates/denoise-mobile-linear, the previous denoise-mobile) continued with
#                      --level-jitter 0.5 (sigma drawn up to halfway to the neighbouring training level, which
#                      fills the dips between levels). The previous denoise-mobile is this run started from the
#                      stage-1 weights (scripts/train_shipped.sh's dn-mobile-linear), followed by a second, solo
#                      continuation (docs/results.md, *Previous mobile denoiser*).
#   sr-mobile-linear, sr-mobile-affine, sr{2,3,4,5,6}-mobile-dedicated
#                      the SR comparison of docs/results.md: one weight set (both forms, jitter 0.5) and a
#                      plain dedicated model at every test scale (scripts/train_shipped.sh)
#
# Usage: [WORKERS=N] scripts/train_gpu.sh DATA_ROOT OUT_DIR [BUDGET] [extra train args...]
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set5,Set14}; BUDGET: minutes per run (default 6) or Nsteps;
#   WORKERS: data-loader processes per run (default 2).
# Exit status 0 when every run trained and evaluated; each run's output is in OUT_DIR/<run>.log.
# Afterwards: python -m train.compare OUT_DIR/sr-* --set Set5 ; python -m train.ship OUT_DIR/<run> --name ...
set -u
if [ $# -lt 2 ]; then
  echo "usage: [WORKERS=N] [DN_INIT=WEIGHTS] scripts/train_gpu.sh DATA_ROOT OUT_DIR [BUDGET] [extra train args...]" >&2
  exit 2
fi
DATA=$1; OUT=$2; BUDGET=${3:-6}; shift 3 || shift $#
EXTRA=("$@")
here=$(cd "$(dirname "$0")" && pwd)
if [[ $BUDGET == *steps ]]; then B=(--steps "${BUDGET%steps}"); else B=(--minutes "$BUDGET"); fi
mkdir -p "$OUT"
# eight training processes and their loaders share the host: one BLAS thread each, a small compile pool
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-2}
( python -m train --task denoise --preset mobile --form linear --data "$DATA/train/CBSD432" --levels 15 35 55 75 \
      --level-jitter 0.5 --init "${DN_INIT:-$here/../train/candidates/denoise-mobile-linear.safetensors}" --lr 1e-4 "${B[@]}" \
      --val "$DATA/test/Set14" --val-every 2000 --workers "${WORKERS:-2}" --no-progress --out "$OUT/dn-mobile-jitter" \
      ${EXTRA[@]+"${EXTRA[@]}"} \
  && python -m train.evaluate --weights "$OUT/dn-mobile-jitter/best.safetensors" --set "$DATA/test/CBSD68" \
      --levels 0 5 15 25 35 45 55 65 75 90 --json "$OUT/dn-mobile-jitter/eval-CBSD68.json" \
) > "$OUT/dn-mobile-jitter.log" 2>&1 &
dn=$!
RUNS="sr-mobile-linear sr-mobile-affine $(for l in 2 3 4 5 6; do echo "sr$l-mobile-dedicated"; done)" \
  WORKERS=${WORKERS:-2} "$here/train_shipped.sh" "$DATA" "$OUT" "$BUDGET" --level-jitter 0.5 ${EXTRA[@]+"${EXTRA[@]}"}
rc=$?
wait "$dn"; status=$?
echo "dn-mobile-jitter: exit $status"
[ "$status" = 0 ] || rc=1
exit $rc
