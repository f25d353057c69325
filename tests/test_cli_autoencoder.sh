#!/bin/sh
# cnn train and cnn evaluate on a model whose output is an image (an
# autoencoder with Conv2DTranspose): target images as the "labels" (here
# the inputs themselves, tests/keras/digits-images-idx3-ubyte), the MSE
# report, and the refusals (labels where images are needed, a loss over
# classes for image targets). CNN=path runs another build of the tool.
root=$(cd "$(dirname "$0")/.." && pwd)
cnn=${CNN:-$root/build/cnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "test_cli_autoencoder: failed: $*" >&2
    if [ -s "$tmp/err" ]; then sed 's/^/    /' "$tmp/err" | head -n 5 >&2; fi
}
run() { "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect() {
    want=$1 what=$2
    shift 2
    run "$@"
    if [ "$rc" -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; fi
}
has() { if grep -q -F -- "$2" "$1"; then ok; else bad "$3: '$2' not found in $(basename "$1")"; fi; }

if [ ! -x "$cnn" ]; then
    echo "test_cli_autoencoder: $cnn is missing"
    echo "test_cli_autoencoder: 0 passed, 1 failed"
    exit 1
fi
images="$root/tests/keras/digits-images-idx3-ubyte"
labels="$root/tests/keras/digits-labels-idx1-ubyte"
cat >"$tmp/ae.model" <<'MODEL'
input shape=28,28,1
Conv2D 4 3 2 same activation=relu
Conv2DTranspose 1 3 2 same activation=sigmoid
MODEL

expect 0 "train an autoencoder on target images" train "$tmp/ae.model" --train-images "$images" \
    --train-labels "$images" --loss binary_crossentropy --epochs 2 --threads 1 \
    --save "$tmp/ae.cnn"
expect 0 "evaluate it against the images" evaluate "$tmp/ae.cnn" --test-images "$images" \
    --test-labels "$images" --threads 1
has "$tmp/out" "against target images (loss binary_crossentropy" "evaluate names the loss"
has "$tmp/out" "mean squared error: 0." "evaluate reports the MSE"
expect 0 "evaluate --format json" evaluate "$tmp/ae.cnn" --test-images "$images" \
    --test-labels "$images" --format json
has "$tmp/out" '"mse": ' "the JSON report has the MSE"
expect 1 "evaluate with labels" evaluate "$tmp/ae.cnn" --test-images "$images" \
    --test-labels "$labels"
has "$tmp/err" "--test-labels must be target images" "evaluate says what it needs"
expect 1 "sparse labels loss for image targets" train "$tmp/ae.model" --train-images "$images" \
    --train-labels "$images" --loss sparse_categorical_crossentropy --threads 1
has "$tmp/err" "compile: the model's output" "train refuses a loss over classes"

echo "test_cli_autoencoder: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
