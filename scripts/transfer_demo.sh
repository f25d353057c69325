#!/bin/sh
# The README's transfer-learning walk-through, end to end: MLPerf Tiny's
# MobileNetV1 (models/mlperf-tiny/, trained on Visual Wake Words, 96x96x3)
# with its head replaced and its lower layers frozen, against the same
# network (examples/mobilenet_v1_96.model) trained from scratch for the same
# wall time, on a folder of images in class folders.
#
#   scripts/transfer_demo.sh [OUT]                  Fashion-MNIST, 10 classes
#   scripts/transfer_demo.sh --photos DIR [OUT]     DIR/train, DIR/val: your photos
#
# Without --photos it writes a Fashion-MNIST subset as PNG class folders
# (scripts/fashion_to_folders.py: $PER_CLASS training and $TEST_PER_CLASS
# test images per class, 28x28 grey; the loader resizes them to 96x96 and
# makes them RGB). Then three runs, each training whole epochs while the
# next one (as long as the last) fits in $BUDGET seconds of wall time,
# epoch by epoch with --resume (which gives the weights of one
# uninterrupted run): the new head alone (--freeze activation_26), the
# upper blocks with it (--freeze $FREEZE), and the whole network from
# random weights. Same --seed, --threads, batch size and optimizer
# (Adam, 0.001) everywhere. It prints each run's epochs, wall time and
# test accuracy (cnn evaluate, not counted in the time).
#
# Settings (environment): BUDGET (120 s), FREEZE (activation_12), SEED (1),
# THREADS (2), PER_CLASS (300), TEST_PER_CLASS (100), CNN (build/cnn),
# NICE (5: the runs are niced; 0 to not). OUT defaults to /tmp/cnn-transfer.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
photos=
if [ "${1:-}" = "--photos" ]; then
    [ $# -ge 2 ] || { echo "usage: $0 [--photos DIR] [OUT]" >&2; exit 2; }
    photos=$2
    shift 2
fi
out=${1:-/tmp/cnn-transfer}
cnn=${CNN:-$root/build/cnn}
budget=${BUDGET:-120}
freeze=${FREEZE:-activation_12}
seed=${SEED:-1}
threads=${THREADS:-2}
nice=${NICE:-5}
model=$root/models/mlperf-tiny/mlperf-tiny-mobilenetv1-vww96.h5
scratch=$root/examples/mobilenet_v1_96.model

[ -x "$cnn" ] || make -s -C "$root" all
mkdir -p "$out"
if [ -n "$photos" ]; then
    train=$photos/train test=$photos/val
else
    train=$out/fashion/train test=$out/fashion/test
    if [ ! -d "$train" ]; then
        python3 "$root/scripts/fashion_to_folders.py" --train-per-class "${PER_CLASS:-300}" \
            --test-per-class "${TEST_PER_CLASS:-100}" "$out/fashion"
    fi
fi
classes=$(find "$train" -mindepth 1 -maxdepth 1 -type d | wc -l)

now() { date +%s.%N; }
calc() { awk "BEGIN { print ($1) }"; }
# run NAME LABEL MODEL [TRANSFER OPTIONS...]: epochs while the next fits in
# the budget; the model is saved as OUT/NAME.cnn.
run() {
    name=$1 label=$2 first=$3
    shift 3
    ck=$out/$name.cnn
    rm -f "$ck"
    epochs=0 elapsed=0 last=0
    while [ "$(calc "$elapsed + $last <= $budget")" -eq 1 ]; do
        epochs=$((epochs + 1))
        start=$(now)
        if [ "$epochs" -eq 1 ]; then
            nice -n "$nice" "$cnn" train "$first" "$@" --data "$train" --epochs 1 --seed "$seed" \
                --threads "$threads" --skip-bad-images --checkpoint "$ck" >"$out/$name.log" 2>&1
        else
            nice -n "$nice" "$cnn" train "$ck" --resume "$ck" --data "$train" --epochs "$epochs" \
                --seed "$seed" --threads "$threads" --skip-bad-images --checkpoint "$ck" \
                >>"$out/$name.log" 2>&1
        fi || { echo "$name: cnn train failed, see $out/$name.log" >&2; exit 1; }
        last=$(calc "$(now) - $start")
        elapsed=$(calc "$elapsed + $last")
    done
    "$cnn" evaluate "$ck" --data "$test" --skip-bad-images >"$out/$name.eval" 2>&1 \
        || { echo "$name: cnn evaluate failed, see $out/$name.eval" >&2; exit 1; }
    acc=$(sed -n 's/^accuracy: \([0-9.]*\).*/\1/p' "$out/$name.eval" | head -n 1)
    train_acc=$(grep 'accuracy:' "$out/$name.log" | tail -n 1 | sed 's/.* accuracy: \([0-9.]*\).*/\1/')
    printf '%-38s %6d %9.0f s %14s %13s\n' "$label" "$epochs" "$elapsed" "$train_acc" "$acc"
}

echo "data: $train ($classes classes), test: $test; budget ${budget} s per run," \
    "--seed $seed --threads $threads"
printf '%-38s %6s %11s %14s %13s\n' run epochs "wall time" "train accuracy" "test accuracy"
run head "head only (--freeze activation_26)" "$model" --replace-head "$classes" --freeze activation_26
run upper "upper blocks (--freeze $freeze)" "$model" --replace-head "$classes" --freeze "$freeze"
if [ "$classes" -ne 10 ]; then
    sed "s/^Dense 10 /Dense $classes /" "$scratch" >"$out/scratch.model"
    scratch=$out/scratch.model
fi
run scratch "from scratch (same network)" "$scratch"
echo "logs and models (.cnn) in $out"
