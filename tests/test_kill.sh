#!/bin/sh
# Crash-safe training: `cnn train --checkpoint` is killed with SIGKILL at a
# random moment, KILL_RUNS times (default 60; `make soak` runs more). Each
# time the last checkpoint must load, and resuming from it (`--resume`)
# must save a model byte-identical to an uninterrupted run with the same
# seed. Kills land anywhere: before the first checkpoint, in the middle of
# an epoch, during a save (a temporary file is left beside the checkpoint;
# the checkpoint itself is the previous one, whole), after the last one.
# Also: a run whose loss turns non-finite stops with an error naming the
# epoch and step and leaves the existing checkpoint untouched; NaN in an IDX
# data file is reported when it is loaded.
#   CNN=path runs another build of the tool; KILL_SEED=n repeats a run.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
runs=${KILL_RUNS:-60}
seed=${KILL_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_kill: failed: $* (KILL_SEED=$seed)" >&2
}

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_kill: 0 passed, 1 failed"
    exit 1
fi
if [ ! -x "$cnn" ]; then
    echo "test_kill: $cnn is missing"
    echo "test_kill: 0 passed, 1 failed"
    exit 1
fi

# ---- a tiny model and data set: 128 images of 8x8, 3 classes ----
python3 - "$tmp" <<'EOF' || { echo "test_kill: 0 passed, 1 failed"; exit 1; }
import math, struct, sys
out = sys.argv[1]
def idx(path, type_byte, dims, body):
    with open(path, 'wb') as f:
        f.write(struct.pack('>BBBB', 0, 0, type_byte, len(dims)) + b''.join(struct.pack('>I', d) for d in dims) + body)
n, seed = 128, 7
pixels, labels = bytearray(), bytearray()
for i in range(n):
    k = i % 3
    labels.append(k)
    for r in range(8):
        for c in range(8):
            seed = (seed * 1103515245 + 12345) % 2**31
            pixels.append(min(255, (180 if (r + c * k) % 3 == 0 else 20) + seed % 50))
idx(out + '/x.idx', 8, [n, 8, 8], bytes(pixels))
idx(out + '/y.idx', 8, [n], bytes(labels))
# float32 images, one NaN; and huge finite ones that overflow in the network
vals = [p / 1.0 for p in pixels]
vals[5 * 64 + 9] = float('nan')
idx(out + '/nan.idx', 0x0D, [n, 8, 8], b''.join(struct.pack('>f', v) for v in vals))
idx(out + '/huge.idx', 0x0D, [n, 8, 8], b''.join(struct.pack('>f', 3.0e38) for v in vals))
EOF
cat >"$tmp/tiny.model" <<'EOF'
input shape=8,8,1
Conv2D 3 3 activation=relu
Flatten
Dropout 0.25
Dense 3 activation=softmax
EOF
train="train $tmp/tiny.model --train-images $tmp/x.idx --train-labels $tmp/y.idx --epochs 30
       --batch-size 8 --seed 3 --threads 1"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- the uninterrupted run ----
start=$(now_ms)
# shellcheck disable=SC2086
if "$cnn" $train --save "$tmp/ref.cnn" --checkpoint "$tmp/ref.ckpt.cnn" >"$tmp/out" 2>&1; then ok; else
    bad "uninterrupted run"; cat "$tmp/out" >&2; fi
span=$(($(now_ms) - start + 20))

# ---- killed runs ----
finished=0 before_first=0 resumed=0 during_save=0 last_epoch=0
i=0
while [ "$i" -lt "$runs" ]; do
    i=$((i + 1))
    d=$tmp/run
    rm -rf "$d"
    mkdir "$d"
    delay=$(awk -v s="$seed" -v i="$i" -v span="$span" 'BEGIN { srand(s + i); printf "%.3f", rand() * span * 0.9 / 1000 }')
    # shellcheck disable=SC2086
    "$cnn" $train --save "$d/out.cnn" --checkpoint "$d/ck.cnn" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if ls "$d"/ck.cnn.tmp.* >/dev/null 2>&1; then during_save=$((during_save + 1)); fi
    if [ -f "$d/out.cnn" ]; then
        finished=$((finished + 1))
        if cmp -s "$d/out.cnn" "$tmp/ref.cnn"; then ok; else bad "run $i finished before the kill but differs"; fi
        continue
    fi
    if [ ! -f "$d/ck.cnn" ]; then
        before_first=$((before_first + 1))
        ok
        continue
    fi
    # the checkpoint loads ...
    if "$cnn" summary "$d/ck.cnn" >"$d/summary" 2>&1; then ok; else
        bad "run $i (killed after ${delay}s): the checkpoint does not load: $(tail -n 1 "$d/summary")"
        continue
    fi
    # ... and resuming from it ends with the uninterrupted run's bytes
    # shellcheck disable=SC2086
    "$cnn" $train --save "$d/out.cnn" --checkpoint "$d/ck.cnn" --resume "$d/ck.cnn" >"$d/resume" 2>&1
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q "already completed 30 epochs" "$d/resume"; then
        # killed after the last checkpoint, before --save: it holds the end state
        last_epoch=$((last_epoch + 1))
        if cmp -s "$d/ck.cnn" "$tmp/ref.ckpt.cnn"; then ok; else bad "run $i: the final checkpoint differs"; fi
    elif [ "$rc" -ne 0 ]; then
        bad "run $i (killed after ${delay}s): resuming failed with exit $rc: $(tail -n 1 "$d/resume")"
    elif cmp -s "$d/out.cnn" "$tmp/ref.cnn"; then
        resumed=$((resumed + 1))
        ok
    else
        bad "run $i (killed after ${delay}s): the resumed model differs from the uninterrupted one"
    fi
done
echo "test_kill: $runs kills within ${span} ms runs: $resumed resumed to identical bytes, $last_epoch after the last checkpoint, $finished finished first, $before_first before the first checkpoint; $during_save landed during a save"

# ---- a non-finite loss stops training and keeps the last checkpoint ----
cp "$tmp/ref.ckpt.cnn" "$tmp/good.cnn"
cp "$tmp/ref.ckpt.cnn" "$tmp/keep.cnn"
"$cnn" train "$tmp/good.cnn" --train-images "$tmp/huge.idx" --train-labels "$tmp/y.idx" \
    --epochs 2 --batch-size 8 --threads 1 --checkpoint "$tmp/keep.cnn" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^cnn train: fit: epoch 1, step [0-9]*/16: the " "$tmp/err" \
    && grep -q "training stopped before this step's update" "$tmp/err"; then ok; else
    bad "non-finite loss: exit $rc, expected 1 naming the epoch and step"; cat "$tmp/err" >&2; fi
if cmp -s "$tmp/keep.cnn" "$tmp/ref.ckpt.cnn"; then ok; else bad "the failed run changed the checkpoint"; fi

# ---- NaN in the data is reported when it is loaded ----
"$cnn" train "$tmp/tiny.model" --train-images "$tmp/nan.idx" --train-labels "$tmp/y.idx" \
    --threads 1 --checkpoint "$tmp/nan.ckpt.cnn" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 1 ] && grep -q "nan.idx: data: the float32 value at index (5, 1, 1) of (128, 8, 8) is NaN" "$tmp/err"; then ok; else
    bad "NaN in data: exit $rc"; cat "$tmp/err" >&2; fi
if [ ! -f "$tmp/nan.ckpt.cnn" ]; then ok; else bad "a checkpoint was written for NaN data"; fi

echo "test_kill: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
