#!/bin/sh
# How the cnn tool opens what it is given (issue 13 item 4, issue 18 item
# 10). MODEL's format is the library's to tell, by content alone: a
# description named .cnn is a description, a saved model named anything is
# a saved model. Names of losses and optimizers are the library's too.
# A FIFO given where cnn expects a file is refused at once with a message,
# never waited on (a blocking open of a FIFO without
# a writer hangs forever). One case per entry point that opens a file the
# user names: MODEL of summary, predict, evaluate, train and visualize,
# train's --resume, --from and --history, and the IMAGE of predict and
# visualize. Each runs under timeout: exit 124 means it hung.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

if [ -z "$CNN" ] && ! make -s -C "$root" all >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "test_cli_open: 0 passed, 1 failed"
    exit 1
fi
if ! command -v timeout >/dev/null || ! mkfifo "$tmp/fifo"; then
    echo "test_cli_open: timeout or mkfifo is missing"
    echo "test_cli_open: 0 passed, 1 failed"
    exit 1
fi

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_cli_open: failed: $*" >&2
    if [ -s "$tmp/err" ]; then sed 's/^/    /' "$tmp/err" | head -n 5 >&2; fi
}
# refused WHAT ARGS...: cnn exits 1 within 20 s ($FIFO_TIMEOUT), saying the FIFO is not a
# regular file.
refused() {
    what=$1
    shift
    timeout ${FIFO_TIMEOUT:-20} "$cnn" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
    if [ "$rc" -eq 124 ]; then
        bad "$what: hung on the FIFO (killed after ${FIFO_TIMEOUT:-20} s)"
    elif [ "$rc" -ne 1 ]; then
        bad "$what: exit $rc, expected 1"
    elif ! grep -q "$tmp/fifo: expected a regular .*, got a FIFO" "$tmp/err"; then
        bad "$what: no message naming the FIFO"
    else
        ok
    fi
}

# a tiny data set: 8 images of 4x4 and their labels (IDX)
data=$tmp/data
mkdir -p "$data"
python3 - "$data" <<'PY' || { echo "test_cli_open: 0 passed, 1 failed"; exit 1; }
import os, struct, sys
out = sys.argv[1]
for name in ('train', 't10k'):
    with open(os.path.join(out, name + '-images-idx3-ubyte'), 'wb') as f:
        f.write(struct.pack('>BBBBIII', 0, 0, 8, 3, 8, 4, 4) + bytes(range(128)))
    with open(os.path.join(out, name + '-labels-idx1-ubyte'), 'wb') as f:
        f.write(struct.pack('>BBBBI', 0, 0, 8, 1, 8) + bytes([0, 1] * 4))
PY
printf 'input shape=4,4,1\nFlatten\nDense 2 activation=softmax\n' >"$tmp/m.model"
train="train $tmp/m.model --data $data --batch-size 4 --threads 1"
if timeout 60 "$cnn" $train --epochs 1 --save "$tmp/m.cnn" >"$tmp/out" 2>"$tmp/err"; then ok
else bad "training the model the cases use"; fi
cp "$data/t10k-images-idx3-ubyte" "$tmp/images.idx"

refused "summary MODEL" summary "$tmp/fifo"
refused "predict MODEL" predict "$tmp/fifo" "$tmp/images.idx"
refused "evaluate MODEL" evaluate "$tmp/fifo" --data "$data"
refused "train MODEL" train "$tmp/fifo" --data "$data" --epochs 1
refused "train --from" train --from "$tmp/fifo" --data "$data" --epochs 1
refused "train --resume" $train --epochs 2 --resume "$tmp/fifo"
refused "train --resume --history" $train --epochs 2 --resume "$tmp/m.ckpt.cnn" \
    --history "$tmp/fifo"
refused "visualize MODEL" visualize "$tmp/fifo" "$tmp/images.idx" --out "$tmp/vis"
refused "predict IMAGE" predict "$tmp/m.cnn" "$tmp/fifo"
refused "visualize IMAGE" visualize "$tmp/m.cnn" "$tmp/fifo" --out "$tmp/vis"

# ---- formats by content, not by name ----
cp "$tmp/m.model" "$tmp/description.cnn"
cp "$tmp/m.cnn" "$tmp/saved.model"
if "$cnn" summary "$tmp/description.cnn" >"$tmp/out" 2>"$tmp/err" \
    && grep -q "Total params: 34" "$tmp/out"; then ok; else bad "a description named .cnn"; fi
if "$cnn" evaluate "$tmp/saved.model" --data "$data" >"$tmp/out" 2>"$tmp/err" \
    && ! grep -q "random (untrained)" "$tmp/err"; then ok
else bad "a saved model named .model is not a description"; fi
if "$cnn" evaluate "$tmp/description.cnn" --data "$data" >"$tmp/out" 2>"$tmp/err" \
    && grep -q "random (untrained)" "$tmp/err"; then ok
else bad "a description named .cnn is warned about as untrained"; fi

# ---- names: the library's tables, Keras's spellings accepted ----
if "$cnn" $train --epochs 1 --optimizer RMSprop --loss SparseCategoricalCrossentropy \
    >"$tmp/out" 2>"$tmp/err" && grep -q "rmsprop" "$tmp/out" \
    && grep -q "loss sparse_categorical_crossentropy" "$tmp/out"; then ok
else bad "Keras's class names as --optimizer and --loss"; fi
"$cnn" $train --epochs 1 --loss hinge >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "expected sparse_categorical_crossentropy.*got 'hinge'" "$tmp/err"
then ok; else bad "--loss hinge: a usage error listing the losses"; fi
"$cnn" $train --epochs 1 --early-stopping 1 --monitor los >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 2 ] && grep -q "expected val_loss, val_accuracy, loss or accuracy, got 'los'" \
    "$tmp/err"; then ok; else bad "--monitor los: a usage error listing the monitors"; fi

echo "test_cli_open: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
