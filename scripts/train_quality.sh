#!/usr/bin/env bash
# Retrain the shipped denoisers with the low-strength fix (docs/results.md, "The low-strength collapse"): each
# preset starts from its shipped weights converted to FORM (`--init` across forms: exact at the top level; the
# multi-scale presets from scratch), trains sigma 0-75 continuously (strata over 15 35 55 75, a quarter of each
# stratum pinned at its level) with the strength weighting floored at sigma 5, then is scored
# on CBSD68 at sigma 0 5 15 25 35 50 75 90 beside the weights it started from. Runs go side by side (one GPU, or a
# CPU split into one thread each). A run folder that exists is continued exactly (--resume) to its own budget; to
# train further, give a new OUT_DIR and INIT_DIR=<the old one>: each preset then starts from its best checkpoint
# there (with a fresh schedule) instead of the shipped weights.
#
# Usage: [PRESETS="fast mobile"] [FORM=shift] [PATCH=96] [LR=2e-4] [WEIGHTING=strength] [INIT_DIR=...] [EXTRA="..."]
#        scripts/train_quality.sh DATA_ROOT OUT_DIR BUDGET
#   BUDGET: wall-clock minutes per run, or Nsteps. DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set14}.
#   `python -m train.ship OUT_DIR/dn-<preset>-<form> --name denoise-<class>` ships a run (class: fast, mobile, paper).
set -u
if [ $# -lt 3 ]; then
  echo "usage: [PRESETS=\"fast mobile\"] [FORM=shift] scripts/train_quality.sh DATA_ROOT OUT_DIR BUDGET" >&2
  exit 2
fi
DATA=$1; OUT=$2; BUDGET=$3
PRESETS=${PRESETS:-"fast mobile"}; FORM=${FORM:-shift}; PATCH=${PATCH:-96}
if [[ $BUDGET == *steps ]]; then B=(--steps "${BUDGET%steps}"); else B=(--minutes "$BUDGET"); fi
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  THREADS=""; WORKERS=2
else
  n=$(echo $PRESETS | wc -w); THREADS=$(( $(nproc) / n )); [ "$THREADS" -ge 1 ] || THREADS=1; WORKERS=1
fi
mkdir -p "$OUT"
DN="0 5 15 25 35 50 75 90"
one() {  # preset
  # a multi-scale preset (unet-fast, unet-mobile) has no shipped weights: it starts from scratch and is compared
  # with the shipped weights of its latency class (denoise-fast, denoise-mobile), which it would replace
  local p=$1 run="$OUT/dn-$1-$FORM" resume=() cls=${1#unet-} init=()
  local floor=(); [ "${WEIGHTING:-strength}" = strength ] && floor=(--weight-floor 5)  # the floor bounds 1/strength only
  [ "$cls" = "$p" ] && init=(--init "denoise-$p")
  [ -f "$run/last.state.safetensors" ] && resume=(--resume)
  [ -n "${INIT_DIR:-}" ] && [ -f "$INIT_DIR/dn-$p-$FORM/best.safetensors" ] && \
    init=(--init "$INIT_DIR/dn-$p-$FORM/best.safetensors")
  # shellcheck disable=SC2086
  { env ${THREADS:+OMP_NUM_THREADS=$THREADS} python -m train --task denoise --preset "$p" --form "$FORM" \
        --levels 15 35 55 75 --level-sampling strata --level-exact 0.25 "${init[@]}" \
        --level-weighting "${WEIGHTING:-strength}" "${floor[@]}" --lr "${LR:-2e-4}" \
        --data "$DATA/train/CBSD432" --exclude 302003.jpg --patch "$PATCH" --val "$DATA/test/Set14" \
        --val-every 2000 --workers "$WORKERS" "${B[@]}" --no-progress --out "$run" "${resume[@]}" ${EXTRA:-} \
    && python -m train.evaluate --compare "denoise-$cls" "$run/best.safetensors" --set "$DATA/test/CBSD68" \
        --levels $DN --json "$run/compare-CBSD68.json" \
    && python -m train.evaluate --weights "$run/best.safetensors" --set "$DATA/test/CBSD68" --levels $DN \
        --json "$run/eval-CBSD68.json"; } > "$OUT/dn-$p-$FORM.log" 2>&1
  local status=$?
  echo "dn-$p-$FORM: exit $status"
  return $status
}
pids=()
for p in $PRESETS; do one "$p" & pids+=($!); done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
