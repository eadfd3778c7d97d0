#!/usr/bin/env bash
# Train the shipped weight sets and their comparison runs concurrently on one GPU, then evaluate them.
#
# Usage: [RUNS="dn-mobile-linear ..."] scripts/train_shipped.sh DATA_ROOT OUT_DIR [MINUTES] [extra train args...]
#   DATA_ROOT holds train/CBSD432 and test/{CBSD68,Set5,Set14,Classic5} (see the datasets README).
# Every run gets the same wall-clock budget; steps reached and steps/s are in each checkpoint's JSON.
# Run names: dn|dj|sr-<preset>-linear|affine (one weight set), dn25-mobile-dedicated, dj30-mobile-dedicated,
# sr4-mobile-dedicated ... (a plain single-level baseline at that test level), dn-paper-linear, dn-fast-linear.
# The seed's tables need, per task, the linear and affine runs and a dedicated run at every test level:
#   RUNS="dn-mobile-linear dn-mobile-affine $(for l in 5 25 45 65 90; do echo dn$l-mobile-dedicated; done)"
set -u
DATA=$1; OUT=$2; MIN=${3:-6}; shift 3 || shift $#
EXTRA=("$@")
RUNS=${RUNS:-"dn-mobile-linear dn-mobile-affine dn25-mobile-dedicated dn-paper-linear dj-mobile-linear sr-mobile-linear"}
mkdir -p "$OUT"
DN="0 5 15 25 35 45 55 65 75 90"
run() {  # name, eval set, eval levels, train args...
  local name=$1 set=$2 levels=$3; shift 3
  { python -m train --data "$DATA/train/CBSD432" --out "$OUT/$name" --minutes "$MIN" --no-progress \
        --val-every 2000 "$@" "${EXTRA[@]}" \
    && python -m train.evaluate --weights "$OUT/$name/best.safetensors" --set "$DATA/test/$set" \
        --levels $levels --json "$OUT/$name/eval-$set.json"; } > "$OUT/$name.log" 2>&1
  echo "$name: exit $?"
}
DNV=(--task denoise --val "$DATA/test/Set14" --levels 15 35 55 75)
for name in $RUNS; do
  case $name in
    dn-mobile-linear) run "$name" CBSD68 "$DN" "${DNV[@]}" --preset mobile --form linear --workers 1 & ;;
    dn-mobile-affine) run "$name" CBSD68 "$DN" "${DNV[@]}" --preset mobile --form affine --workers 1 & ;;
    dn-mobile-affine-nw) run "$name" CBSD68 "$DN" "${DNV[@]}" --preset mobile --form affine --level-weighting none \
        --workers 1 & ;;
    dn*-mobile-dedicated) lv=${name#dn}; lv=${lv%%-*}  # dn25-mobile-dedicated: a plain model at sigma 25
        run "$name" CBSD68 "0 $lv" --task denoise --val "$DATA/test/Set14" --preset mobile \
        --baseline-level "$lv" --workers 1 & ;;
    dj*-mobile-dedicated) lv=${name#dj}; lv=${lv%%-*}
        run "$name" Classic5 "100 $lv" --task dejpeg --val "$DATA/test/CBSD68" --preset mobile \
        --baseline-level "$lv" --workers 1 & ;;
    sr*-mobile-dedicated) lv=${name#sr}; lv=${lv%%-*}
        run "$name" Set5 "1 $lv" --task sr --val "$DATA/test/CBSD68" --preset mobile --exclude 302003.jpg \
        --baseline-level "$lv" --workers 1 & ;;
    dn-fast-linear) run "$name" CBSD68 "$DN" "${DNV[@]}" --preset fast --form linear --workers 1 & ;;
    dj-mobile-affine) run "$name" Classic5 "10 30 50 70 80 90 100" --task dejpeg --preset mobile --form affine \
        --levels 10 30 50 80 --val "$DATA/test/CBSD68" --workers 2 & ;;
    sr-mobile-affine) run "$name" Set5 "1 2 3 4 5 6" --task sr --preset mobile --form affine --levels 2 3 4 5 \
        --exclude 302003.jpg --val "$DATA/test/CBSD68" --workers 2 & ;;
    dn-paper-linear) run "$name" CBSD68 "$DN" "${DNV[@]}" --preset paper --form linear --workers 2 & ;;
    dj-mobile-linear) run "$name" Classic5 "10 30 50 70 80 90 100" --task dejpeg --preset mobile \
        --levels 10 30 50 80 --val "$DATA/test/CBSD68" --workers 4 & ;;
    sr-mobile-linear) run "$name" Set5 "1 2 3 4 5 6" --task sr --preset mobile --levels 2 3 4 5 \
        --exclude 302003.jpg --val "$DATA/test/CBSD68" --workers 4 & ;;
    *) echo "unknown run $name" >&2 ;;
  esac
done
wait
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
  python -m train.evaluate --weights "$best" --set "$DATA/test/$set" --levels $levels \
      --json "$OUT/$name/eval-$set.json" >> "$OUT/$name.log" 2>&1
done
exit 0
