#!/usr/bin/env bash
# One bounded GPU call of the quality recipe (scripts/train_quality.sh), made to be repeated: it continues the
# runs under RUNS_DIR exactly where the last call left them (--resume), trains each preset side by side for
# BUDGET minutes, evaluates on CBSD68, and copies what the next call needs (each run's checkpoints, training
# state and evaluations, every file well under 16 MiB) to OUT_DIR.
#
# Usage: [PRESETS="unet-fast unet-mobile paper"] scripts/gpu_quality.sh DATA_ROOT RUNS_DIR OUT_DIR [BUDGET]
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set14} (copy them beside the checkout: about 55 MB).
#   RUNS_DIR is restored from the previous call's OUT_DIR first (same layout).
set -u
if [ $# -lt 3 ]; then
  echo "usage: [PRESETS=\"unet-fast unet-mobile paper\"] scripts/gpu_quality.sh DATA_ROOT RUNS_DIR OUT_DIR [BUDGET]" >&2
  exit 2
fi
DATA=$1; RUNS=$2; OUT=$3; BUDGET=${4:-8}
here=$(dirname "$0")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible"
PRESETS=${PRESETS:-"unet-fast unet-mobile paper"} "$here/train_quality.sh" "$DATA" "$RUNS" "$BUDGET"
rc=$?
mkdir -p "$OUT"
for run in "$RUNS"/dn-*; do
  [ -d "$run" ] || continue
  mkdir -p "$OUT/$(basename "$run")"
  cp "$run"/*.safetensors "$run"/*.json "$OUT/$(basename "$run")/" 2>/dev/null
done
cp "$RUNS"/*.log "$OUT/" 2>/dev/null
exit $rc
